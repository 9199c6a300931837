/** The frame of every signed-in page: header (who is logged in, log out) and the menu of kinds. */
import { AppShell, Badge, Burger, Button, Group, NavLink, ScrollArea, Text, Title } from '@mantine/core';
import { useDisclosure } from '@mantine/hooks';
import { useQueryClient } from '@tanstack/react-query';
import type { ReactNode } from 'react';
import { Link, useLocation } from 'react-router';
import { title, visibleKinds } from '../api/catalog';
import { request } from '../api/client';
import { setSession, useSession } from '../api/session';

export function Layout({ children }: { children: ReactNode }) {
  const session = useSession();
  const [opened, { toggle }] = useDisclosure();
  const location = useLocation();
  const queries = useQueryClient();
  const kinds = visibleKinds(session?.isAdmin ?? false);

  async function logout() {
    // revoke the token on the server too; the session ends here whatever it answers
    await request('POST', '/v1/auth/logout').catch(() => undefined);
    // RequireSession (routes.tsx) then opens the login page
    setSession(null, 'logout');
    queries.clear();
  }

  return (
    <AppShell
      header={{ height: 56 }}
      navbar={{ width: 220, breakpoint: 'sm', collapsed: { mobile: !opened } }}
      padding="md"
    >
      <AppShell.Header>
        <Group h="100%" px="md" justify="space-between">
          <Group>
            <Burger opened={opened} onClick={toggle} hiddenFrom="sm" size="sm" aria-label="Menu" />
            <Title order={1} size="h3">
              <Link to="/" style={{ color: 'inherit', textDecoration: 'none' }}>
                Nimbus
              </Link>
            </Title>
          </Group>
          <Group>
            <Text size="sm" data-testid="who">
              {session?.user}@{session?.account}
            </Text>
            <Badge color={session?.isAdmin ? 'red' : 'blue'}>{session?.isAdmin ? 'admin' : 'tenant'}</Badge>
            <Button variant="default" size="xs" onClick={logout}>
              Log out
            </Button>
          </Group>
        </Group>
      </AppShell.Header>
      <AppShell.Navbar p="xs" aria-label="Resources">
        <AppShell.Section grow component={ScrollArea}>
          <NavLink component={Link} to="/" label="Dashboard" active={location.pathname === '/'} />
          <NavLink
            component={Link}
            to="/portal"
            label="Self-service"
            active={location.pathname === '/portal'}
          />
          {kinds.map((k) => (
            <NavLink
              key={k.kind}
              component={Link}
              to={`/${k.kind}`}
              label={title(k)}
              active={location.pathname === `/${k.kind}` || location.pathname.startsWith(`/${k.kind}/`)}
            />
          ))}
        </AppShell.Section>
      </AppShell.Navbar>
      <AppShell.Main>{children}</AppShell.Main>
    </AppShell>
  );
}
