// The entity types Tandem ships. Adding one is declaring it in its own file and listing it here.
import type { EntityDefinition } from '../entity.ts';
import { customer } from './customer.ts';
import { invoice } from './invoice.ts';

export const builtInEntities: readonly EntityDefinition[] = [customer, invoice];
