/**
 * `/console/<vm uuid>`: the VM's screen in the browser. `POST /v1/vms/{uuid}/actions/console`
 * answers a single-use token in a WebSocket URL (`/v1/console?token=…`, the management node's
 * relay to the VM's VNC on its host: docs/compute.md "Console"); noVNC speaks RFB over it and
 * draws into the page. A refusal (the VM is not Running, its host is simulated and has no VNC)
 * shows the API's code and message. A new token is asked for at each connect: they are spent on
 * use and expire within a minute.
 * The page is a chunk of its own (routes.tsx): noVNC loads with it only.
 */

import { Alert, Anchor, Badge, Button, Group, Stack, Text, Title } from '@mantine/core';
import RFB from '@novnc/novnc';
import { useQuery } from '@tanstack/react-query';
import { useCallback, useEffect, useRef, useState } from 'react';
import { Link, useParams } from 'react-router';
import type { Static } from 'typebox';
import type { VmConsole } from '../../../src/contract/console.js';
import { ApiError, get, post } from '../api/client';
import type { Vm } from '../api/types';

type Status = 'idle' | 'asking' | 'connecting' | 'connected' | 'disconnected';

export function VmConsolePage() {
  const { uuid = '' } = useParams();
  const vm = useQuery({ queryKey: ['kind', 'vms', uuid], queryFn: () => get<Vm>(`/v1/vms/${uuid}`) });
  const screen = useRef<HTMLElement>(null);
  const rfb = useRef<RFB | null>(null);
  const [status, setStatus] = useState<Status>('idle');
  const [error, setError] = useState<ApiError | null>(null);
  const [why, setWhy] = useState<string | null>(null);

  const connect = useCallback(async () => {
    rfb.current?.disconnect();
    setError(null);
    setWhy(null);
    setStatus('asking');
    let grant: Static<typeof VmConsole>;
    try {
      grant = await post<Static<typeof VmConsole>>(`/v1/vms/${uuid}/actions/console`, {});
    } catch (err) {
      setError(err instanceof ApiError ? err : new ApiError(0, 'CLIENT', 'Internal', String(err)));
      setStatus('idle');
      return;
    }
    if (!screen.current) return setStatus('idle');
    setStatus('connecting');
    const client = new RFB(screen.current, grant.url);
    client.scaleViewport = true;
    client.addEventListener('connect', () => {
      setStatus('connected');
      client.focus();
    });
    client.addEventListener('disconnect', (e) => {
      const clean = (e as CustomEvent<{ clean: boolean }>).detail?.clean;
      setWhy(clean ? null : 'the connection dropped (the VM stopped, its host went away, or the network)');
      setStatus('disconnected');
    });
    client.addEventListener('securityfailure', (e) =>
      setWhy(`VNC security failure: ${(e as CustomEvent<{ reason?: string }>).detail?.reason ?? 'refused'}`),
    );
    rfb.current = client;
  }, [uuid]);

  // connect when the page opens, disconnect when it closes
  useEffect(() => {
    void connect();
    return () => rfb.current?.disconnect();
  }, [connect]);

  const name = vm.data?.name ?? uuid;
  return (
    <Stack>
      <div>
        <Text size="sm" c="dimmed">
          <Anchor component={Link} to="/vms" underline="always">
            vms
          </Anchor>{' '}
          /{' '}
          <Anchor component={Link} to={`/vms/${uuid}`} underline="always">
            {name}
          </Anchor>{' '}
          / console
        </Text>
        <Group justify="space-between">
          <Title order={2}>Console of {name}</Title>
          <Group gap="xs">
            <Badge data-testid="console-status" variant="light">
              {status}
            </Badge>
            <Button size="xs" variant="light" onClick={() => void connect()} loading={status === 'asking'}>
              Reconnect
            </Button>
            <Button
              size="xs"
              variant="default"
              disabled={status !== 'connected'}
              onClick={() => rfb.current?.sendCtrlAltDel()}
            >
              Send Ctrl-Alt-Del
            </Button>
          </Group>
        </Group>
      </div>
      {error && (
        <Alert color="red" title={error.code} role="alert" data-testid="console-error">
          {error.message}
        </Alert>
      )}
      {why && (
        <Alert color="orange" role="alert">
          {why}
        </Alert>
      )}
      <section
        ref={screen}
        data-testid="console-screen"
        aria-label={`screen of ${name}`}
        style={{ width: '100%', height: '70vh', background: '#111', borderRadius: 4 }}
      />
    </Stack>
  );
}
