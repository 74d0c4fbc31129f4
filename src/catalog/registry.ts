import type { EntityDefinition } from './entity.ts';

/** The entity types a Tandem instance knows, by type name and by id prefix. */
export class EntityRegistry {
  readonly #byType = new Map<string, EntityDefinition>();
  readonly #byPrefix = new Map<string, EntityDefinition>();

  constructor(definitions: readonly EntityDefinition[]) {
    for (const definition of definitions) this.register(definition);
  }

  register(definition: EntityDefinition): void {
    if (this.#byType.has(definition.type)) throw new Error(`Entity type ${definition.type} is declared twice`);
    if (this.#byPrefix.has(definition.prefix)) throw new Error(`Id prefix ${definition.prefix} is declared twice`);
    this.#byType.set(definition.type, definition);
    this.#byPrefix.set(definition.prefix, definition);
  }

  get(type: string): EntityDefinition {
    const definition = this.#byType.get(type);
    if (definition === undefined) throw new Error(`Unknown entity type ${type}`);
    return definition;
  }

  has(type: string): boolean {
    return this.#byType.has(type);
  }

  all(): EntityDefinition[] {
    return [...this.#byType.values()];
  }
}
