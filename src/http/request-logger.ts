// The per-request logger: carries the request's bindings (request id, correlation id, workspace, key)
// but makes the pino child only when a line is actually written at an enabled level.
//
// Why: Fastify gives every request a child logger, and Tandem adds its ids to it twice more. A pino
// child costs ~10 µs (bindings serialised, redaction set up): at warn level most requests never log
// a line, and three children were ~10% of the CPU of a read by id (docs/benchmarks.md). Bindings
// added before the first line are merged, so the one child made carries them all, in order.
import type { FastifyBaseLogger } from 'fastify';
import type { Bindings, ChildLoggerOptions, LogFn } from 'pino';

type Level = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace';

/** The logger pino and Fastify agree on, plus pino's level check. */
export type ParentLogger = FastifyBaseLogger & { isLevelEnabled(level: string): boolean };

export class RequestLogger implements FastifyBaseLogger {
  readonly #parent: ParentLogger;
  readonly #bindings: Bindings;
  readonly #options: ChildLoggerOptions | undefined;
  #child: FastifyBaseLogger | undefined;

  constructor(parent: ParentLogger, bindings: Bindings, options?: ChildLoggerOptions) {
    this.#parent = parent;
    this.#bindings = bindings;
    this.#options = options;
  }

  get level(): string {
    return this.#parent.level;
  }

  set level(level: string) {
    this.#real().level = level;
  }

  child(bindings: Bindings, options?: ChildLoggerOptions): FastifyBaseLogger {
    if (this.#child !== undefined) return this.#child.child(bindings, options);
    return new RequestLogger(this.#parent, { ...this.#bindings, ...bindings }, options ?? this.#options);
  }

  readonly fatal: LogFn = this.#method('fatal');
  readonly error: LogFn = this.#method('error');
  readonly warn: LogFn = this.#method('warn');
  readonly info: LogFn = this.#method('info');
  readonly debug: LogFn = this.#method('debug');
  readonly trace: LogFn = this.#method('trace');
  readonly silent: LogFn = () => undefined;

  #method(level: Level): LogFn {
    return ((...args: Parameters<LogFn>) => {
      if (this.#child === undefined && !this.#parent.isLevelEnabled(level)) return;
      this.#real()[level](...args);
    });
  }

  #real(): FastifyBaseLogger {
    this.#child ??= this.#parent.child(this.#bindings, this.#options);
    return this.#child;
  }
}
