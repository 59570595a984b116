import net from 'node:net'
import { EtcdControlPlane, NodeRegistration } from '../../src/cluster/index.ts'
import type { AssignmentProposal, NodeReport } from '../../src/cluster/index.ts'
import { Epoch, Lsn, ReplicaId } from '../../src/replication/index.ts'
import type { EtcdCluster } from '../support/etcd.ts'

export const n1 = ReplicaId.of('n1')
export const n2 = ReplicaId.of('n2')
export const n3 = ReplicaId.of('n3')

export const clock = (): number => performance.now()

export { until } from '../support/local.ts'

export function proposal(primaryId: ReplicaId, replicaIds: ReplicaId[], committedLsn = 0, learnerIds: ReplicaId[] = []): AssignmentProposal {
  return { primaryId, replicaIds, learnerIds, durability: 'sync_quorum', committedLsn: Lsn.of(committedLsn), lineageResets: [] }
}

export function report(epoch: number, durableLsn: number, extra: Partial<NodeReport> = {}): NodeReport {
  return { epoch: Epoch.of(epoch), durableLsn: Lsn.of(durableLsn), safeLsn: Lsn.of(durableLsn), committedLsn: Lsn.of(durableLsn), appliedLsn: Lsn.of(durableLsn), replicaStates: [], ...extra }
}

/** Everything a test opened, closed in reverse order even when the test failed. */
export class Resources {
  readonly #closers: Array<() => Promise<void> | void> = []

  add<T>(resource: T, close: (resource: T) => Promise<void> | void): T {
    this.#closers.push(() => close(resource))
    return resource
  }

  control(etcd: EtcdCluster, callTimeoutMs = 2_000): EtcdControlPlane {
    return this.add(EtcdControlPlane.connect({ endpoints: etcd.endpoints, callTimeoutMs }), (control) => control.close())
  }

  async register(control: EtcdControlPlane, nodeId: ReplicaId, ttlSeconds = 1, port = 4000): Promise<NodeRegistration> {
    const registration = await NodeRegistration.register(control, {
      nodeId,
      endpoint: { dataAddress: `127.0.0.1:${port}`, controlAddress: `127.0.0.1:${port + 1}` },
      ttlSeconds,
      clock,
    })
    return this.add(registration, (opened) => opened.abandon())
  }

  async close(): Promise<void> {
    for (const close of this.#closers.splice(0).reverse()) {
      try {
        await close()
      } catch {
        // closing what may already be gone
      }
    }
  }
}

/**
 * A TCP proxy in front of etcd that a test can cut (a partition between one
 * client and etcd): `cut` drops every open connection and refuses new ones.
 */
export class CuttableProxy {
  readonly #sockets = new Set<net.Socket>()
  #cut = false

  private constructor(
    private readonly server: net.Server,
    readonly endpoint: string,
  ) {}

  static async start(target: string): Promise<CuttableProxy> {
    const [host, port] = target.split(':') as [string, string]
    let proxy: CuttableProxy | undefined
    const server = net.createServer((client) => {
      if (proxy === undefined || proxy.#cut) {
        client.destroy()
        return
      }
      const upstream = net.connect(Number(port), host)
      const sockets = proxy.#sockets
      sockets.add(client)
      sockets.add(upstream)
      const close = (): void => {
        client.destroy()
        upstream.destroy()
        sockets.delete(client)
        sockets.delete(upstream)
      }
      client.on('error', close).on('close', close)
      upstream.on('error', close).on('close', close)
      client.pipe(upstream)
      upstream.pipe(client)
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    const address = server.address()
    if (address === null || typeof address === 'string') throw new Error('no address')
    proxy = new CuttableProxy(server, `127.0.0.1:${address.port}`)
    return proxy
  }

  cut(): void {
    this.#cut = true
    for (const socket of this.#sockets) socket.destroy()
    this.#sockets.clear()
  }

  async close(): Promise<void> {
    this.cut()
    await new Promise<void>((resolve) => this.server.close(() => resolve()))
  }
}
