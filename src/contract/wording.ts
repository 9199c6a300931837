/**
 * How a kind is named in English, for people: CLI help and messages, OpenAPI summaries.
 * `l3-network` reads "an L3 network", `eip` "an EIP", `vm-nic` "a VM NIC". Acronyms are spelled
 * out letter by letter, so their article follows the first letter's sound (an L3, a VIP), while
 * words follow their first letter (an image, a zone). Pure: no schema, no I/O (the CLI bundle and
 * the server both import it).
 */
const ACRONYMS: Record<string, string> = {
  vm: 'VM',
  vms: 'VMs',
  nic: 'NIC',
  nics: 'NICs',
  ip: 'IP',
  eip: 'EIP',
  eips: 'EIPs',
  vip: 'VIP',
  vips: 'VIPs',
  l2: 'L2',
  l3: 'L3',
  vxlan: 'VXLAN',
};

/** Letters whose spoken name starts with a vowel sound: "an L3", "an NFS", "an SSH key". */
const VOWEL_SOUND_LETTERS = new Set(['a', 'e', 'f', 'h', 'i', 'l', 'm', 'n', 'o', 'r', 's', 'x']);

/** `l3-network` → `L3 network`, `ip-addresses` → `IP addresses`. */
export function noun(kebab: string): string {
  return kebab
    .split('-')
    .map((w) => ACRONYMS[w] ?? w)
    .join(' ');
}

/** `eip` → `an EIP`, `vm` → `a VM`, `image` → `an image`, `user` → `a user`. */
export function withArticle(kebab: string): string {
  const first = kebab.split('-')[0] ?? '';
  const c = first.charAt(0).toLowerCase();
  const vowel = ACRONYMS[first] ? VOWEL_SOUND_LETTERS.has(c) : /^[aeio]/.test(first);
  return `${vowel ? 'an' : 'a'} ${noun(kebab)}`;
}
