import { Alert, Anchor } from '@mantine/core';
import { Link } from 'react-router';

/** An unknown page, or a kind this account may not see (a tenant asking for /hosts). */
export function NotFoundPage({ what = 'This page' }: { what?: string }) {
  return (
    <Alert color="gray" title="Not found" role="alert">
      {what} does not exist or is not visible to this account.{' '}
      <Anchor component={Link} to="/">
        Back to the dashboard
      </Anchor>
    </Alert>
  );
}
