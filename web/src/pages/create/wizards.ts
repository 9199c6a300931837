/**
 * How the create page of a kind is laid out: its body's fields in steps (what a person decides
 * first comes first), and the rows of another kind made with it (an L3 network's IP ranges, a
 * security group's rules), each created once the parent exists with the parent's uuid in
 * `parentField`. Every field of the contract's create body appears: the fields a wizard does not
 * place go to a last step, "More", so a new field of the API shows up without a change here.
 */

export interface Step {
  title: string;
  fields: string[];
}

export interface Children {
  kind: string;
  parentField: string;
  /** the button that adds one: "Add an IP range" */
  add: string;
}

export interface Wizard {
  steps: Step[];
  children?: Children;
}

const WIZARDS: Record<string, Wizard> = {
  vms: {
    steps: [
      {
        title: 'Image and size',
        fields: ['name', 'description', 'imageUuid', 'instanceOfferingUuid', 'cpu', 'memory'],
      },
      {
        title: 'Networks',
        fields: ['l3NetworkUuids', 'defaultL3NetworkUuid', 'securityGroupUuids', 'staticIps'],
      },
      {
        title: 'Volumes',
        fields: ['rootDiskSize', 'dataDiskOfferingUuids', 'dataDiskSizes', 'deleteDataDisksWithVm'],
      },
      {
        title: 'Placement',
        fields: [
          'zoneUuid',
          'clusterUuid',
          'hostUuid',
          'primaryStorageUuid',
          'affinityGroupUuid',
          'strategy',
        ],
      },
      // what the guest is given at first boot (a textarea: field-input.tsx) and how it is kept alive
      { title: 'Guest', fields: ['userData', 'haLevel'] },
    ],
  },
  'l2-networks': {
    steps: [
      { title: 'Network', fields: ['name', 'description', 'zoneUuid', 'type'] },
      { title: 'Wiring', fields: ['physicalInterface', 'vlan', 'vxlanPoolUuid', 'vni'] },
    ],
  },
  'l3-networks': {
    steps: [
      {
        title: 'Network',
        fields: ['name', 'description', 'l2NetworkUuid', 'category', 'ipVersion', 'shared'],
      },
      {
        title: 'Services',
        fields: [
          'provider',
          'virtualRouterOfferingUuid',
          'dns',
          'domainName',
          'mtu',
          'ipAllocation',
          'hostRoutes',
        ],
      },
    ],
    children: { kind: 'ip-ranges', parentField: 'l3NetworkUuid', add: 'Add an IP range' },
  },
  'security-groups': {
    steps: [{ title: 'Group', fields: ['name', 'description'] }],
    children: { kind: 'security-group-rules', parentField: 'securityGroupUuid', add: 'Add a rule' },
  },
  pools: {
    steps: [
      { title: 'Purpose', fields: ['name', 'description', 'imageUuid', 'instanceOfferingUuid'] },
      {
        title: 'Networks and login',
        fields: ['l3NetworkUuids', 'securityGroupUuids', 'floatingL3NetworkUuid', 'loginUser', 'userData'],
      },
      {
        title: 'Stock and leases',
        fields: [
          'warmTarget',
          'cap',
          'defaultLeaseSeconds',
          'maxLeaseSeconds',
          'maxRenewals',
          'perUserLimit',
          'shared',
          'emptyPolicy',
          'waitSeconds',
        ],
      },
    ],
  },
};

/** The steps of a kind's create page over the fields the caller is shown. */
export function wizardFor(kind: string, fields: string[]): Wizard {
  const w = WIZARDS[kind] ?? { steps: [{ title: 'Details', fields }] };
  const placed = new Set(w.steps.flatMap((s) => s.fields));
  const steps = w.steps
    .map((s) => ({ ...s, fields: s.fields.filter((f) => fields.includes(f)) }))
    .filter((s) => s.fields.length > 0);
  const rest = fields.filter((f) => !placed.has(f));
  if (rest.length > 0) steps.push({ title: 'More', fields: rest });
  return { ...w, steps };
}
