/** The console's entry: Mantine theme, the query cache, the router. */
import '@mantine/core/styles.css';
import { MantineProvider } from '@mantine/core';
import { QueryClient, QueryClientProvider } from '@tanstack/react-query';
import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { RouterProvider } from 'react-router';
import { ApiError, onUnauthenticated } from './api/client';
import { router } from './routes';
import { contrastResolver, theme } from './theme';

const queries = new QueryClient({
  defaultOptions: {
    queries: {
      staleTime: 5_000,
      // a refusal (4xx) will not change by asking again; a 503 may
      retry: (n, err) => n < 2 && !(err instanceof ApiError && err.status < 500),
    },
  },
});

// an expired or revoked session: back to the login page, which returns here after logging in
onUnauthenticated(() => {
  const here = window.location.pathname + window.location.search;
  queries.clear();
  if (window.location.pathname !== '/login') void router.navigate(`/login?next=${encodeURIComponent(here)}`);
});

createRoot(document.getElementById('root')!).render(
  <StrictMode>
    <MantineProvider defaultColorScheme="light" theme={theme} cssVariablesResolver={contrastResolver}>
      <QueryClientProvider client={queries}>
        <RouterProvider router={router} />
      </QueryClientProvider>
    </MantineProvider>
  </StrictMode>,
);
