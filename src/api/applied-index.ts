import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { TallyError } from '../domain/index.ts'
import type { LedgerNode } from '../server/index.ts'

/** The applied index a response reflects (docs/reads.md). */
export const appliedIndexHeader = 'Tally-Applied-Index'
/** A read asks to be served at or after this applied index (read-your-writes). */
export const minAppliedIndexHeader = 'Tally-Min-Applied-Index'
/**
 * In replicated mode, on a write a primary answered: the epoch it held when
 * it answered. A client (or a checker) learns which term acknowledged its
 * write; two primaries never answer in the same epoch.
 */
export const epochHeader = 'Tally-Epoch'
/** How long a read waits for the node to reach `Tally-Min-Applied-Index` before 503. */
export const readWaitMsDefault = 5_000

declare module 'fastify' {
  interface FastifyRequest {
    /** Set by `appliedIndexHeaders`: the applied index a read started at, `-1` for a write; undefined before the handler. */
    appliedIndexSeen: number | undefined
  }
}

/**
 * Every response says which applied index it reflects; a read may ask for
 * at least a given index and then waits for it, with a deadline.
 *
 * A read is answered from the store at the index it saw when it started
 * (after any wait): `Tally-Applied-Index` is that index, a lower bound on
 * what the answer reflects. A write is answered once its index is applied,
 * so the header on its answer (the node's applied index when it answers) is
 * at or above the write's own index: a client passing it back as
 * `Tally-Min-Applied-Index` to any node reads its write.
 */
export class AppliedIndexHeaders {
  constructor(
    private readonly node: LedgerNode,
    private readonly readWaitMs: number = readWaitMsDefault,
  ) {}

  /** Adds the request field; the app calls `beforeHandler` and `beforeSend` from the hooks every request runs. */
  attach(app: FastifyInstance): void {
    // A request field rather than a WeakMap keyed by request: every request pays for it, and a field is a plain store.
    app.decorateRequest('appliedIndexSeen', undefined)
  }

  /**
   * Before the handler: a write is marked to carry the index at its answer;
   * a read records the index it starts at, after waiting for
   * `Tally-Min-Applied-Index` if it asks for more. Calls `done` at once
   * unless the read must wait (only then a promise).
   */
  beforeHandler(request: FastifyRequest, reply: FastifyReply, done: (error?: Error) => void): void {
    const node = this.node
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      request.appliedIndexSeen = atAnswer
      return done()
    }
    let wanted: number | undefined
    try {
      wanted = minAppliedIndexOf(request.headers[minAppliedIndexHeaderLowerCase])
    } catch (error) {
      return done(error as Error)
    }
    if (wanted === undefined || node.storeIndex() >= wanted) {
      request.appliedIndexSeen = node.storeIndex()
      return done()
    }
    const waitedFor = wanted
    const readWaitMs = this.readWaitMs
    node.waitForApplied(waitedFor, readWaitMs).then((reached) => {
      if (!reached) {
        void reply.header(appliedIndexHeader, String(node.storeIndex()))
        return done(
          new TallyError({
            code: 'NOT_CAUGHT_UP',
            kind: 'unavailable',
            message: `this node has applied up to index ${node.storeIndex()}; the read asked for ${waitedFor} and it was not reached within ${readWaitMs} ms: retry, or read from another node`,
            details: { appliedIndex: String(node.storeIndex()), minAppliedIndex: String(waitedFor) },
          }),
        )
      }
      request.appliedIndexSeen = node.storeIndex()
      done()
    }, done)
  }

  /** Before the answer's head is written: the index it reflects; a primary's write answer, its epoch. */
  beforeSend(request: FastifyRequest, reply: FastifyReply): void {
    const index = request.appliedIndexSeen
    if (index === undefined) return
    if (!reply.hasHeader(appliedIndexHeader)) void reply.header(appliedIndexHeader, String(index === atAnswer ? this.node.storeIndex() : index))
    // A forwarded write is answered by the primary itself (its headers pass through the replica unchanged).
    if (index === atAnswer && reply.statusCode < 400 && !reply.hasHeader(epochHeader)) {
      const epoch = this.node.primaryEpoch()
      if (epoch !== undefined) void reply.header(epochHeader, String(epoch))
    }
  }
}

/** `appliedIndexSeen` of a write: its answer carries the node's applied index when it answers. */
const atAnswer = -1

const minAppliedIndexHeaderLowerCase = minAppliedIndexHeader.toLowerCase()

function minAppliedIndexOf(header: string | string[] | undefined): number | undefined {
  if (header === undefined) return undefined
  const text = Array.isArray(header) ? header[0] : header
  if (text === undefined || !/^(0|[1-9][0-9]{0,15})$/.test(text.trim()) || !Number.isSafeInteger(Number(text))) {
    throw new TallyError({ code: 'VALIDATION', kind: 'validation', message: `${minAppliedIndexHeader} must be a non-negative integer index, got ${JSON.stringify(String(text).slice(0, 40))}` })
  }
  return Number(text)
}
