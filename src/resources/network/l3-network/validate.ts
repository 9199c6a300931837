/** Field rules of an L3's network settings (create and update): DNS servers and host routes. */
import type { FieldProblem } from '../../../kernel/errors.js';
import { parseCidr, parseIp } from '../../../kernel/ip.js';

/** Every bad DNS entry and host route, at once, named by position (dns[1], hostRoutes[0].nexthop). */
export function networkSettingProblems(body: Record<string, unknown>): FieldProblem[] {
  const problems: FieldProblem[] = [];
  const dns = (body.dns as string[] | undefined) ?? [];
  dns.forEach((d, i) => {
    if (!parseIp(d)) problems.push({ field: `dns[${i}]`, problem: `'${d}' is not an IP address` });
  });
  const routes = (body.hostRoutes as Array<{ destination: string; nexthop: string }> | undefined) ?? [];
  routes.forEach((r, i) => {
    const destination = parseCidr(r.destination);
    const nexthop = parseIp(r.nexthop);
    if (!destination)
      problems.push({
        field: `hostRoutes[${i}].destination`,
        problem: `'${r.destination}' is not a CIDR (e.g. 10.1.0.0/16, host bits zero)`,
      });
    if (!nexthop)
      problems.push({ field: `hostRoutes[${i}].nexthop`, problem: `'${r.nexthop}' is not an IP address` });
    if (destination && nexthop && destination.version !== nexthop.version)
      problems.push({
        field: `hostRoutes[${i}].nexthop`,
        problem: `is not an IPv${destination.version} address`,
      });
  });
  return problems;
}

/** jsonb columns take JSON text: a JS array would be sent as a PostgreSQL array literal. */
export function jsonColumns(body: Record<string, unknown>): Record<string, unknown> {
  const out = { ...body };
  for (const key of ['dns', 'hostRoutes']) if (out[key] !== undefined) out[key] = JSON.stringify(out[key]);
  return out;
}
