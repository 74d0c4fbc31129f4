// The connectors a Tandem instance knows, by id. Adding a connector: declare its ConnectorDefinition
// in its folder (src/connectors/<id>/) and list it in builtInConnectors.
import type { ConnectorDefinition } from './connector.ts';
import { salesforceConnector } from './salesforce/salesforce-connector.ts';
import { stripeConnector } from './stripe/stripe-connector.ts';

// The registry keeps definitions with their credentials and settings types erased (unknown):
// callers parse both through the definition's own schemas before createClient.
export const builtInConnectors: readonly ConnectorDefinition[] = [stripeConnector, salesforceConnector];

export class ConnectorRegistry {
  readonly #byId = new Map<string, ConnectorDefinition>();

  constructor(definitions: readonly ConnectorDefinition[]) {
    for (const definition of definitions) this.register(definition);
  }

  register(definition: ConnectorDefinition): void {
    if (!/^[a-z][a-z0-9_]*$/.test(definition.id)) throw new Error(`Connector id ${definition.id} must be lower-case letters, digits and _`);
    if (this.#byId.has(definition.id)) throw new Error(`Connector ${definition.id} is declared twice`);
    this.#byId.set(definition.id, definition);
  }

  /** The connector with this id; throws for an unknown id. */
  get(id: string): ConnectorDefinition {
    const definition = this.#byId.get(id);
    if (definition === undefined) throw new Error(`Unknown connector ${id}`);
    return definition;
  }

  /** The connector with this id, or undefined (for input from outside). */
  find(id: string): ConnectorDefinition | undefined {
    return this.#byId.get(id);
  }

  has(id: string): boolean {
    return this.#byId.has(id);
  }

  all(): ConnectorDefinition[] {
    return [...this.#byId.values()];
  }
}
