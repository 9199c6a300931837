// Host facts parsing, and the accelerator decision on this very machine.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { detectAccelerator, parseCpuInfo, parseMemTotal } from './facts.js';

const CPUINFO = `processor\t: 0
model name\t: Intel(R) Xeon(R) CPU E5-2680 v4 @ 2.40GHz
flags\t\t: fpu vme de pse vmx sse2

processor\t: 1
model name\t: Intel(R) Xeon(R) CPU E5-2680 v4 @ 2.40GHz
flags\t\t: fpu vme de pse vmx sse2
`;

test('cpuinfo: model, logical CPUs, hardware virtualisation flag', () => {
  assert.deepEqual(parseCpuInfo(CPUINFO), {
    model: 'Intel(R) Xeon(R) CPU E5-2680 v4 @ 2.40GHz',
    logicalCpus: 2,
    hardwareVirt: true,
  });
  assert.equal(parseCpuInfo(CPUINFO.replace(/ vmx/g, '')).hardwareVirt, false);
  assert.equal(parseCpuInfo(CPUINFO.replace(/ vmx/g, ' svm')).hardwareVirt, true);
});

test('meminfo: MemTotal in bytes', () => {
  assert.equal(parseMemTotal('MemTotal:       24684760 kB\nMemFree: 1 kB\n'), 24684760 * 1024);
  assert.throws(() => parseMemTotal('MemFree: 1 kB\n'), /MemTotal/);
});

test('accelerator: an explicit choice wins; auto is kvm only with vmx/svm flags', async () => {
  assert.equal(await detectAccelerator('tcg'), 'tcg');
  assert.equal(await detectAccelerator('kvm'), 'kvm');
  const virt = parseCpuInfo(readFileSync('/proc/cpuinfo', 'utf8')).hardwareVirt;
  const auto = await detectAccelerator('auto');
  if (!virt) assert.equal(auto, 'tcg', 'no vmx/svm: a /dev/kvm here (PVM) cannot boot guests');
  else assert.ok(auto === 'kvm' || auto === 'tcg');
});
