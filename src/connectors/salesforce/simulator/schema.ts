// The simulated org's schema: Account and Contact with the standard fields Tandem uses, the audit
// fields, and the external id field `Tandem_Id__c` (External ID, Unique) on both. Field names are
// case-insensitive on the wire, as in Salesforce; records keep the canonical spelling.

export type FieldType = 'id' | 'boolean' | 'string' | 'textarea' | 'phone' | 'url' | 'email' | 'reference' | 'datetime' | 'picklist';

export interface FieldDef {
  name: string;
  label: string;
  type: FieldType;
  length: number;
  nillable: boolean;
  createable: boolean;
  updateable: boolean;
  /** Must be given on create (Salesforce: not nillable, createable, not defaulted). */
  required: boolean;
  externalId: boolean;
  unique: boolean;
  calculated: boolean;
  custom: boolean;
  referenceTo: string[];
  relationshipName: string | null;
  picklistValues: string[];
}

export interface SObjectDef {
  name: string;
  label: string;
  labelPlural: string;
  keyPrefix: string;
  fields: FieldDef[];
  /** By lower-cased name. */
  byName: Map<string, FieldDef>;
  /** Child relationships: e.g. Account.Contacts → Contact.AccountId. */
  children: { relationshipName: string; childSObject: string; field: string; cascadeDelete: boolean }[];
}

type FieldSpec = Partial<FieldDef> & { name: string; type: FieldType };

function field(spec: FieldSpec): FieldDef {
  const lengths: Partial<Record<FieldType, number>> = { id: 18, reference: 18, string: 255, textarea: 255, phone: 40, url: 255, email: 80, picklist: 255 };
  return {
    label: spec.name.replace(/__c$/, '').replace(/_/g, ' ').replace(/([a-z])([A-Z])/g, '$1 $2'),
    length: lengths[spec.type] ?? 0,
    nillable: true,
    createable: true,
    updateable: true,
    required: false,
    externalId: false,
    unique: false,
    calculated: false,
    custom: spec.name.endsWith('__c'),
    referenceTo: [],
    relationshipName: null,
    picklistValues: [],
    ...spec,
  };
}

const readOnly = { createable: false, updateable: false } as const;

function system(): FieldDef[] {
  return [
    field({ name: 'Id', type: 'id', label: 'Record ID', nillable: false, ...readOnly }),
    field({ name: 'IsDeleted', type: 'boolean', label: 'Deleted', nillable: false, ...readOnly }),
  ];
}

function audit(): FieldDef[] {
  const user = { referenceTo: ['User'], ...readOnly };
  return [
    field({ name: 'OwnerId', type: 'reference', label: 'Owner ID', referenceTo: ['User'], relationshipName: 'Owner', nillable: false }),
    field({ name: 'CreatedDate', type: 'datetime', label: 'Created Date', nillable: false, ...readOnly }),
    field({ name: 'CreatedById', type: 'reference', label: 'Created By ID', relationshipName: 'CreatedBy', nillable: false, ...user }),
    field({ name: 'LastModifiedDate', type: 'datetime', label: 'Last Modified Date', nillable: false, ...readOnly }),
    field({ name: 'LastModifiedById', type: 'reference', label: 'Last Modified By ID', relationshipName: 'LastModifiedBy', nillable: false, ...user }),
    field({ name: 'SystemModstamp', type: 'datetime', label: 'System Modstamp', nillable: false, ...readOnly }),
    field({ name: 'Tandem_Id__c', type: 'string', label: 'Tandem Id', length: 64, externalId: true, unique: true }),
  ];
}

function address(prefix: string): FieldDef[] {
  return [
    field({ name: `${prefix}Street`, type: 'textarea' }),
    field({ name: `${prefix}City`, type: 'string', length: 40 }),
    field({ name: `${prefix}State`, type: 'string', length: 80 }),
    field({ name: `${prefix}PostalCode`, type: 'string', length: 20 }),
    field({ name: `${prefix}Country`, type: 'string', length: 80 }),
  ];
}

function sobject(name: string, labelPlural: string, keyPrefix: string, fields: FieldDef[], children: SObjectDef['children'] = []): SObjectDef {
  return { name, label: name, labelPlural, keyPrefix, fields, byName: new Map(fields.map((f) => [f.name.toLowerCase(), f])), children };
}

export const ACCOUNT = sobject(
  'Account',
  'Accounts',
  '001',
  [
    ...system(),
    field({ name: 'Name', type: 'string', label: 'Account Name', nillable: false, required: true }),
    field({ name: 'Type', type: 'picklist', label: 'Account Type', picklistValues: ['Prospect', 'Customer - Direct', 'Customer - Channel', 'Partner', 'Other'] }),
    field({ name: 'Phone', type: 'phone', label: 'Account Phone' }),
    field({ name: 'Website', type: 'url' }),
    field({ name: 'Description', type: 'textarea', length: 32000, label: 'Account Description' }),
    field({ name: 'AccountNumber', type: 'string', length: 40, label: 'Account Number' }),
    ...address('Billing'),
    ...audit(),
  ],
  [{ relationshipName: 'Contacts', childSObject: 'Contact', field: 'AccountId', cascadeDelete: true }],
);

export const CONTACT = sobject('Contact', 'Contacts', '003', [
  ...system(),
  field({ name: 'AccountId', type: 'reference', label: 'Account ID', referenceTo: ['Account'], relationshipName: 'Account' }),
  field({ name: 'FirstName', type: 'string', length: 40 }),
  field({ name: 'LastName', type: 'string', length: 80, nillable: false, required: true }),
  field({ name: 'Name', type: 'string', length: 121, label: 'Full Name', nillable: false, calculated: true, ...readOnly }),
  field({ name: 'Email', type: 'email' }),
  field({ name: 'Phone', type: 'phone', label: 'Business Phone' }),
  field({ name: 'Title', type: 'string', length: 128 }),
  ...address('Mailing'),
  ...audit(),
]);

export const SOBJECTS: ReadonlyMap<string, SObjectDef> = new Map([ACCOUNT, CONTACT].map((d) => [d.name.toLowerCase(), d]));

export function findSObject(name: string): SObjectDef | undefined {
  return SOBJECTS.get(name.toLowerCase());
}

export function sobjectByPrefix(id: string): SObjectDef | undefined {
  return [...SOBJECTS.values()].find((d) => id.startsWith(d.keyPrefix));
}

const SOAP_TYPES: Record<FieldType, string> = {
  id: 'tns:ID', boolean: 'xsd:boolean', string: 'xsd:string', textarea: 'xsd:string', phone: 'xsd:string', url: 'xsd:string',
  email: 'xsd:string', reference: 'tns:ID', datetime: 'xsd:dateTime', picklist: 'xsd:string',
};

function describeField(f: FieldDef): Record<string, unknown> {
  return {
    name: f.name,
    label: f.label,
    type: f.type,
    soapType: SOAP_TYPES[f.type],
    length: f.length,
    byteLength: f.length * 3,
    precision: 0,
    scale: 0,
    digits: 0,
    nillable: f.nillable,
    createable: f.createable,
    updateable: f.updateable,
    defaultedOnCreate: !f.createable || f.type === 'boolean' || f.name === 'OwnerId',
    externalId: f.externalId,
    unique: f.unique,
    idLookup: f.type === 'id' || f.externalId,
    caseSensitive: false,
    calculated: f.calculated,
    custom: f.custom,
    filterable: f.type !== 'textarea' || f.length <= 255,
    sortable: f.type !== 'textarea' || f.length <= 255,
    groupable: f.type !== 'datetime' && f.type !== 'textarea',
    nameField: f.name === 'Name',
    referenceTo: f.referenceTo,
    relationshipName: f.relationshipName,
    cascadeDelete: false,
    picklistValues: f.picklistValues.map((value) => ({ active: true, defaultValue: false, label: value, validFor: null, value })),
    restrictedPicklist: false,
    deprecatedAndHidden: false,
    defaultValue: null,
    inlineHelpText: null,
  };
}

/** `GET /sobjects/{T}/describe`. */
export function describe(def: SObjectDef, base: string): Record<string, unknown> {
  return {
    ...describeGlobalEntry(def, base),
    fields: def.fields.map(describeField),
    childRelationships: def.children.map((c) => ({
      cascadeDelete: c.cascadeDelete, childSObject: c.childSObject, deprecatedAndHidden: false, field: c.field,
      relationshipName: c.relationshipName, restrictedDelete: false,
    })),
    recordTypeInfos: [],
    supportedScopes: [{ label: 'All', name: 'everything' }, { label: 'Mine', name: 'mine' }],
  };
}

/** One entry of `GET /sobjects` (describe global), also the top of a describe. */
export function describeGlobalEntry(def: SObjectDef, base: string): Record<string, unknown> {
  return {
    name: def.name,
    label: def.label,
    labelPlural: def.labelPlural,
    keyPrefix: def.keyPrefix,
    custom: false,
    activateable: false,
    createable: true,
    updateable: true,
    deletable: true,
    undeletable: true,
    queryable: true,
    retrieveable: true,
    replicateable: true,
    searchable: true,
    triggerable: true,
    layoutable: true,
    mergeable: true,
    feedEnabled: false,
    urls: {
      sobject: `${base}/sobjects/${def.name}`,
      describe: `${base}/sobjects/${def.name}/describe`,
      rowTemplate: `${base}/sobjects/${def.name}/{ID}`,
    },
  };
}
