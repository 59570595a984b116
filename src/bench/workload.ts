import { invariant } from '../domain/index.ts'
import type { Random } from './random.ts'
import type { HttpResponse, HttpTransport } from './http.ts'

/**
 * A workload is a named recipe for requests. The runner owns timing, clients,
 * stop conditions and accounting; a workload only says what to send and how
 * to read the answer. Issue 3's read workloads (`get-account`, `list-filter`,
 * `aggregate-balances`) register here and run beside a write workload, each
 * with its own concurrency.
 */

/** Run-wide knobs a workload may use. Validated once by the caller. */
export interface WorkloadSettings {
  readonly ledger: string
  /** Number of `users:<k>` accounts the postings spread over. */
  readonly accounts: number
  /** Elements per `_bulk` request. */
  readonly bulkSize: number
  /** Fraction in [0, 1] of transactions that move money user → user with `force: true`. */
  readonly forceRatio: number
}

/** One request ready to send. `body` is the exact wire text (lossless JSON). */
export interface BenchRequest {
  readonly method: 'GET' | 'POST' | 'HEAD'
  /** Path and query, starting with `/`. */
  readonly path: string
  readonly body: string | undefined
  /** Operations this request attempts: 1 for a transaction or a read, B for a bulk. */
  readonly operations: number
}

/** What one answered request achieved. `failures` names each failed operation's cause. */
export interface RequestOutcome {
  /** True when the HTTP exchange itself succeeded (2xx). */
  readonly ok: boolean
  /** Transactions committed by this request (0 for reads). */
  readonly transactions: number
  /** Operations that succeeded (transactions for writes, 1 for a successful read). */
  readonly operationsSucceeded: number
  /** One entry per distinct failure cause, with how many operations it took down. */
  readonly failures: ReadonlyArray<{ readonly key: string; readonly operations: number }>
}

/** Produces the requests of one client; `random` is that client's own seeded stream. */
export interface RequestGenerator {
  next(): BenchRequest
  classify(request: BenchRequest, response: HttpResponse): RequestOutcome
}

export interface WorkloadSetupContext {
  readonly settings: WorkloadSettings
  readonly transport: HttpTransport
}

export interface WorkloadDefinition {
  /** Lower-case, dash-separated; used on the command line. */
  readonly name: string
  /** One line for `--help` and the docs. */
  readonly summary: string
  readonly kind: 'write' | 'read'
  /** Runs once before the load starts (e.g. seed the accounts a read workload reads). */
  setup?(context: WorkloadSetupContext): Promise<void>
  createGenerator(settings: WorkloadSettings, random: Random): RequestGenerator
}

const workloadNamePattern = /^[a-z][a-z0-9-]*$/

export class WorkloadRegistry {
  private readonly definitions = new Map<string, WorkloadDefinition>()

  register(definition: WorkloadDefinition): this {
    invariant(workloadNamePattern.test(definition.name), `workload name ${definition.name} is not lower-case-dashed`)
    invariant(!this.definitions.has(definition.name), `workload ${definition.name} is already registered`)
    this.definitions.set(definition.name, definition)
    return this
  }

  get(name: string): WorkloadDefinition | undefined {
    return this.definitions.get(name)
  }

  names(): string[] {
    return [...this.definitions.keys()]
  }

  list(): WorkloadDefinition[] {
    return [...this.definitions.values()]
  }
}
