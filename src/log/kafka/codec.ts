// How a log entry travels in Kafka: the key is the record id, the value the entry as JSON (the
// change with its outbox partition and offset, so consumers know each change's position in the
// outbox whatever the Kafka offset of the copy they read).
import type { LogEntry } from '../change.ts';

export function encodeEntry(entry: LogEntry): string {
  return JSON.stringify(entry);
}

export function decodeEntry(value: string): LogEntry {
  const entry = JSON.parse(value) as LogEntry;
  if (typeof entry.id !== 'string' || !Number.isInteger(entry.partition) || !Number.isInteger(entry.offset)) {
    throw new Error('not a Tandem log entry');
  }
  return entry;
}
