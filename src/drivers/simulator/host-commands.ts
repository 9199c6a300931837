/** Simulated answers to host-level commands. */
import type { SimHandlers } from './machine.js';

export const hostHandlers: Pick<SimHandlers, 'host.connect' | 'host.capacity' | 'host.ping'> = {
  'host.connect': async ({ machine }) => ({
    hypervisorType: 'simulator',
    hypervisorVersion: '1.0',
    hostname: `sim-${machine.address.replace(/\./g, '-')}`,
    cpuModel: 'Simulated CPU',
  }),
  'host.capacity': async ({ machine }) => ({ cpu: machine.cpu, memory: machine.memory }),
  'host.ping': async ({ machine }) => ({ uptimeSeconds: Math.floor((Date.now() - machine.bootedAt) / 1000) }),
};
