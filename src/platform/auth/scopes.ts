export const SCOPES = [
  'shares:write',
  'shares:read',
  'consents:write',
  'consents:read',
  'audit:read',
  'subjects:erase',
] as const;
export type Scope = (typeof SCOPES)[number];

export function isScope(value: string): value is Scope {
  return (SCOPES as readonly string[]).includes(value);
}
