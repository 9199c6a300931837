/** Login: account, user (defaults to the account's own user) and password → POST /v1/auth/login. */
import { Alert, Button, Center, Paper, PasswordInput, Stack, TextInput, Title } from '@mantine/core';
import { type FormEvent, useState } from 'react';
import { useNavigate, useSearchParams } from 'react-router';
import type { LoginBody, LoginReply, WhoAmI } from '../../../src/contract/auth.js';
import { ApiError, get, post } from '../api/client';
import { setSession } from '../api/session';

/** Only a path of this console: `next=//evil.example` or a full URL would leave it. */
function safeNext(next: string | null): string {
  return next?.startsWith('/') && !next.startsWith('//') && !next.startsWith('/login') ? next : '/';
}

export function LoginPage() {
  const [params] = useSearchParams();
  const navigate = useNavigate();
  const [account, setAccount] = useState('');
  const [user, setUser] = useState('');
  const [password, setPassword] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  async function submit(e: FormEvent) {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const body: LoginBody = { account, password, ...(user ? { user } : {}) };
      const reply = await post<LoginReply>('/v1/auth/login', body);
      setSession({ ...reply, isAdmin: false, account, user: user || account });
      const who = await get<WhoAmI>('/v1/auth/whoami');
      setSession({ ...reply, isAdmin: who.isAdmin, account, user: user || account });
      navigate(safeNext(params.get('next')), { replace: true });
    } catch (err) {
      setSession(null);
      setError(err instanceof ApiError ? err.message : String(err));
    } finally {
      setBusy(false);
    }
  }

  return (
    <Center component="main" mih="100vh" bg="gray.0">
      <Paper component="form" onSubmit={submit} withBorder shadow="sm" p="xl" w={380} aria-label="Log in">
        <Stack>
          <Title order={1} size="h2">
            Nimbus
          </Title>
          {params.get('next') && !error && (
            <Alert color="blue">Log in to continue to {safeNext(params.get('next'))}</Alert>
          )}
          <TextInput
            label="Account"
            name="account"
            required
            autoFocus
            autoComplete="organization"
            value={account}
            onChange={(e) => setAccount(e.currentTarget.value)}
          />
          <TextInput
            label="User"
            name="user"
            description="Leave empty for the account's own user"
            autoComplete="username"
            value={user}
            onChange={(e) => setUser(e.currentTarget.value)}
          />
          <PasswordInput
            label="Password"
            name="password"
            required
            autoComplete="current-password"
            value={password}
            onChange={(e) => setPassword(e.currentTarget.value)}
          />
          {error && (
            <Alert color="red" role="alert">
              {error}
            </Alert>
          )}
          <Button type="submit" loading={busy}>
            Log in
          </Button>
        </Stack>
      </Paper>
    </Center>
  );
}
