export const roles = ['viewer', 'editor', 'admin'] as const;
export type Role = (typeof roles)[number];

/** Does a key with role `has` meet the requirement `needs`? admin > editor > viewer. */
export function roleAllows(has: Role, needs: Role): boolean {
  return roles.indexOf(has) >= roles.indexOf(needs);
}
