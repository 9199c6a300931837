/**
 * A VM page's serial log section: the end of the VM's serial console output, as
 * `GET /v1/vms/{uuid}/serial-log` answers it (docs/compute.md "Serial log"; a simulated host's is
 * a synthetic boot log). Read when the page opens and on Refresh; the API's refusal (a VM that
 * never ran: VM_SERIAL_LOG_UNAVAILABLE) shows as its code and message.
 */
import { Alert, Button, Card, Code, Group, Text, Title } from '@mantine/core';
import { useQuery } from '@tanstack/react-query';
import type { Static } from 'typebox';
import type { VmSerialLog as VmSerialLogShape } from '../../../src/contract/compute.js';
import { ApiError, get } from '../api/client';

/** what the page shows of the log: the API's bound is larger, a page need not be */
const TAIL_BYTES = 16 * 1024;

export function VmSerialLog({ uuid }: { uuid: string }) {
  const log = useQuery({
    queryKey: ['kind', 'vms', uuid, 'serial-log'],
    queryFn: () => get<Static<typeof VmSerialLogShape>>(`/v1/vms/${uuid}/serial-log?tail=${TAIL_BYTES}`),
    retry: false,
  });
  const error = log.error instanceof ApiError ? log.error : null;
  return (
    <Card withBorder data-testid="serial-log">
      <Group justify="space-between" mb="xs">
        <Title order={3} size="h5">
          Serial log
        </Title>
        <Button size="xs" variant="light" onClick={() => void log.refetch()} loading={log.isFetching}>
          Refresh
        </Button>
      </Group>
      {error && (
        <Alert color="orange" title={error.code} role="alert">
          {error.message}
        </Alert>
      )}
      {log.data && (
        <>
          <Text size="xs" c="dimmed" mb={4}>
            {log.data.truncated
              ? `the last ${TAIL_BYTES} of ${log.data.size} bytes kept on the host`
              : `${log.data.size} bytes`}
          </Text>
          {/* a scrolling region: focusable, so a keyboard can scroll it (axe: scrollable-region-focusable) */}
          <Code
            block
            mah={360}
            style={{ overflow: 'auto', whiteSpace: 'pre-wrap' }}
            tabIndex={0}
            aria-label="serial log"
            data-testid="serial-log-text"
          >
            {log.data.log || '(empty)'}
          </Code>
        </>
      )}
    </Card>
  );
}
