/**
 * A node's registration: its endpoint under `nodes/<id>` and its reports
 * under `reports/<id>`, both attached to one etcd lease that this process
 * renews itself. The node id is stable; the endpoint value may change
 * (`updateEndpoint`), and its version is the key's mod revision. When the
 * process dies its keys disappear once etcd's lease expires; if the lease
 * is lost while the process lives (a long pause, etcd unreachable for a
 * whole TTL), the next renewal registers again under a new lease.
 *
 * Each renewal tells its listeners when it was SENT (`sentAtMs`, the
 * injected monotonic clock): the primary's lease counts from there
 * (`primary-lease.ts`), never from when the answer arrived.
 */
import type { Lease } from 'etcd3'
import type { ReplicaId } from '../../replication/index.ts'
import { encodeEndpoint, encodeReport, encodeSuspicion, type NodeEndpointValue, type NodeReport, type Suspicion } from './codec.ts'
import type { EtcdControlPlane } from './control-plane.ts'
import { isLeaseGone } from './errors.ts'

/** A monotonic clock in milliseconds (`performance.now` in a server; a test may drive its own). */
export type MonotonicClock = () => number

export interface RegistrationOptions {
  readonly nodeId: ReplicaId
  readonly endpoint: NodeEndpointValue
  /** The registration lease's TTL; etcd's minimum is about 2 s with its default election timeout. */
  readonly ttlSeconds: number
  readonly clock: MonotonicClock
  /** How often the lease is renewed (default a third of the TTL). */
  readonly renewEveryMs?: number
}

export type Renewal =
  | { readonly ok: true; readonly sentAtMs: number; readonly reregistered: boolean }
  | { readonly ok: false; readonly sentAtMs: number; readonly reason: 'unreachable' | 'lease_lost'; readonly error: Error }

export class NodeRegistration {
  readonly nodeId: ReplicaId
  readonly ttlSeconds: number
  readonly #control: EtcdControlPlane
  readonly #clock: MonotonicClock
  readonly #renewEveryMs: number
  readonly #listeners = new Set<(renewal: Renewal) => void>()
  #endpoint: NodeEndpointValue
  #lastReport: NodeReport | undefined
  #suspicion: Suspicion | undefined
  #lease: Lease | undefined
  #timer: NodeJS.Timeout | undefined
  #stopped = false
  #renewing: Promise<Renewal> | undefined

  private constructor(control: EtcdControlPlane, options: RegistrationOptions) {
    if (!Number.isSafeInteger(options.ttlSeconds) || options.ttlSeconds < 1) throw new Error('ttlSeconds must be a whole number of seconds >= 1')
    this.#control = control
    this.nodeId = options.nodeId
    this.ttlSeconds = options.ttlSeconds
    this.#clock = options.clock
    this.#endpoint = options.endpoint
    this.#renewEveryMs = options.renewEveryMs ?? Math.max(100, Math.floor((options.ttlSeconds * 1000) / 3))
    encodeEndpoint(options.endpoint)
  }

  /** Registers the node (a new lease, its endpoint) and starts renewing. */
  static async register(control: EtcdControlPlane, options: RegistrationOptions): Promise<NodeRegistration> {
    const registration = new NodeRegistration(control, options)
    await registration.#register()
    registration.#schedule()
    return registration
  }

  get endpoint(): NodeEndpointValue {
    return this.#endpoint
  }

  /** The etcd lease id, as a decimal string. */
  async leaseId(): Promise<string> {
    const lease = this.#lease
    if (lease === undefined) throw new Error('not registered')
    return this.#control.call('lease id', () => lease.grant())
  }

  onRenewal(listener: (renewal: Renewal) => void): () => void {
    this.#listeners.add(listener)
    return () => this.#listeners.delete(listener)
  }

  /** Publishes what the node holds (epoch, LSNs, the states a primary sees); it vanishes with the lease. */
  async report(report: NodeReport): Promise<void> {
    this.#lastReport = report
    const lease = this.#currentLease()
    await this.#control.call('report', () => lease.put(this.#control.keys.report(this.nodeId)).value(encodeReport(report)).exec())
  }

  /**
   * Publishes (or, with undefined, withdraws) that this node lost the
   * primary of an epoch (`suspicions/<id>`); it vanishes with the lease, and
   * a re-registration publishes it again.
   */
  async suspect(suspicion: Suspicion | undefined): Promise<void> {
    this.#suspicion = suspicion
    const lease = this.#currentLease()
    const key = this.#control.keys.suspicion(this.nodeId)
    if (suspicion === undefined) await this.#control.call('withdraw suspicion', () => this.#control.client.delete().key(key).exec())
    else {
      const value = encodeSuspicion(suspicion)
      await this.#control.call('suspect', () => lease.put(key).value(value).exec())
    }
  }

  /** The node listens elsewhere now (a restart at a new address): same id, new endpoint version. */
  async updateEndpoint(endpoint: NodeEndpointValue): Promise<void> {
    const value = encodeEndpoint(endpoint)
    this.#endpoint = endpoint
    const lease = this.#currentLease()
    await this.#control.call('update endpoint', () => lease.put(this.#control.keys.node(this.nodeId)).value(value).exec())
  }

  /** Renews the lease once now (the timer also does); registers again if etcd says the lease is gone. */
  renew(): Promise<Renewal> {
    this.#renewing ??= this.#renewOnce().finally(() => {
      this.#renewing = undefined
    })
    return this.#renewing
  }

  async #renewOnce(): Promise<Renewal> {
    const sentAtMs = this.#clock()
    let renewal: Renewal
    try {
      const lease = this.#currentLease()
      const response = await this.#control.call('renew lease', () => lease.keepaliveOnce({ deadline: new Date(Date.now() + this.#control.callTimeoutMs) }))
      renewal = Number(response.TTL) > 0 ? { ok: true, sentAtMs, reregistered: false } : { ok: false, sentAtMs, reason: 'lease_lost', error: new Error('lease expired') }
    } catch (error) {
      renewal = { ok: false, sentAtMs, reason: isLeaseGone(error) ? 'lease_lost' : 'unreachable', error: error as Error }
    }
    if (!renewal.ok && renewal.reason === 'lease_lost' && !this.#stopped) {
      // The keys went with the lease: register again. The primary's lease still counts from
      // this renewal's send time, so a re-registration never extends a lapsed primary lease.
      try {
        await this.#register()
        renewal = { ok: true, sentAtMs, reregistered: true }
      } catch {
        // etcd answered once but not now: stay lost; the next tick tries again.
      }
    }
    for (const listener of this.#listeners) listener(renewal)
    return renewal
  }

  async #register(): Promise<void> {
    const lease = this.#control.lease(this.ttlSeconds)
    // A lease we stop using is no error; without a listener Node would not throw, but say so.
    lease.on('lost', () => undefined)
    try {
      const endpointValue = encodeEndpoint(this.#endpoint)
      await this.#control.call('register', () => lease.put(this.#control.keys.node(this.nodeId)).value(endpointValue).exec())
      if (this.#lastReport !== undefined) {
        const reportValue = encodeReport(this.#lastReport)
        await this.#control.call('report', () => lease.put(this.#control.keys.report(this.nodeId)).value(reportValue).exec())
      }
      if (this.#suspicion !== undefined) {
        const suspicionValue = encodeSuspicion(this.#suspicion)
        await this.#control.call('suspect', () => lease.put(this.#control.keys.suspicion(this.nodeId)).value(suspicionValue).exec())
      }
    } catch (error) {
      // The new lease is used only once registered: a lease whose grant failed (etcd unreachable) keeps
      // answering every call with that failure, so renewing it would read "unreachable" for good and the
      // node would never register again. The old, expired one keeps saying "lease lost": retried next renewal.
      lease.release()
      throw error
    }
    this.#lease?.release()
    this.#lease = lease
  }

  #currentLease(): Lease {
    const lease = this.#lease
    if (lease === undefined || this.#stopped) throw new Error('the registration is closed')
    return lease
  }

  #schedule(): void {
    if (this.#stopped) return
    this.#timer = setTimeout(() => {
      void this.renew().finally(() => this.#schedule())
    }, this.#renewEveryMs)
    this.#timer.unref()
  }

  /** Stops renewing without revoking: the keys vanish when etcd's lease expires, as after a crash. */
  abandon(): void {
    this.#stopped = true
    if (this.#timer !== undefined) clearTimeout(this.#timer)
    this.#lease?.release()
  }

  /** Leaves the cluster at once: the lease is revoked and the keys deleted. */
  async close(): Promise<void> {
    const lease = this.#lease
    this.abandon()
    if (lease !== undefined) await this.#control.call('revoke lease', () => lease.revoke()).catch(() => undefined)
  }
}
