/**
 * Client routes. A kind's pages sit at the API's path without `/v1` (`/vms`, `/vms/<uuid>`), so a
 * console URL and an API URL name the same thing; the server answers every such path with
 * index.html (src/api/web-console.ts).
 */
import { createBrowserRouter, Navigate, Outlet, useLocation } from 'react-router';
import { endedByLogout, useSession } from './api/session';
import { Layout } from './components/layout';
import { CreatePage } from './pages/create/create-page';
import { KindDetailPage } from './pages/kind-detail';
import { KindListPage } from './pages/kind-list';
import { LoginPage } from './pages/login';
import { NotFoundPage } from './pages/not-found';
import { PortalPage } from './pages/portal/portal-page';

function RequireSession() {
  const session = useSession();
  const here = useLocation();
  if (!session)
    return (
      <Navigate
        to={endedByLogout() ? '/login' : `/login?next=${encodeURIComponent(here.pathname + here.search)}`}
        replace
      />
    );
  return (
    <Layout>
      <Outlet />
    </Layout>
  );
}

export const router = createBrowserRouter([
  { path: '/login', element: <LoginPage /> },
  {
    element: <RequireSession />,
    children: [
      // its own chunk: ECharts loads with the dashboard, not with the login or list pages
      { index: true, lazy: async () => ({ Component: (await import('./pages/dashboard')).DashboardPage }) },
      { path: ':kind', element: <KindListPage /> },
      // its own chunk: noVNC loads with the console page only
      {
        path: 'console/:uuid',
        lazy: async () => ({ Component: (await import('./pages/vm-console')).VmConsolePage }),
      },
      { path: 'portal', element: <PortalPage /> },
      { path: ':kind/new', element: <CreatePage /> },
      { path: ':kind/:uuid', element: <KindDetailPage /> },
      { path: '*', element: <NotFoundPage /> },
    ],
  },
]);
