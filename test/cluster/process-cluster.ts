// Shared by the tests that run real `tally serve --cluster` processes
// (serve-cluster, bank, acceptance): free ports, JSON calls with a deadline,
// a node's `/_/cluster` view, and account balances.
import assert from 'node:assert/strict'
import type { EtcdCluster } from '../support/etcd.ts'
import { FaultProxy } from '../support/fault-proxy.ts'
import { killTally, spawnTally, type ServerProcess } from '../support/server-process.ts'
import { tempDirectory } from '../support/temp.ts'
import { until } from './helpers.ts'
import { freePort } from '../support/local.ts'
export { freePort }

export interface ClusterView {
  role: string
  epoch: number
  appliedIndex: number
  headLsn: number
  committedLsn: number
  caughtUp: boolean
  primaryId?: string
  stateHash?: { index: number; hash: string }
}

export interface Reply {
  status: number
  headers: Headers
  json: unknown
}


export async function call(base: string, method: string, path: string, body?: unknown, headers: Record<string, string> = {}, timeoutMs = 10_000): Promise<Reply> {
  const response = await fetch(`${base}${path}`, {
    method,
    headers: { ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    signal: AbortSignal.timeout(timeoutMs),
  })
  const text = await response.text()
  return { status: response.status, headers: response.headers, json: text === '' ? undefined : JSON.parse(text) }
}

/** A write to a primary that may not hold its lease yet (just promoted): 503 is retried until the deadline. */
export async function writeOnPrimary(base: string, path: string, body: unknown, headers: Record<string, string> = {}): Promise<Reply> {
  return until(`a write to ${path} accepted`, async () => {
    const reply = await call(base, 'POST', path, body, headers).catch(() => undefined)
    return reply === undefined || reply.status === 503 ? undefined : reply
  })
}

/** The node's `/_/cluster` view; undefined when it is not running or does not answer. */
export async function clusterView(server: ServerProcess | undefined): Promise<ClusterView | undefined> {
  if (server === undefined) return undefined
  try {
    const reply = await call(server.baseUrl, 'GET', '/_/cluster', undefined, {}, 3_000)
    return reply.status === 200 ? (reply.json as ClusterView) : undefined
  } catch {
    return undefined
  }
}

export async function balance(base: string, ledger: string, account: string, minIndex: number): Promise<bigint> {
  const reply = await call(base, 'GET', `/v2/${ledger}/accounts/${account}?expand=volumes`, undefined, { 'Tally-Min-Applied-Index': String(minIndex) })
  if (reply.status === 404) return 0n
  assert.equal(reply.status, 200, JSON.stringify(reply.json))
  const volumes = (reply.json as { data: { volumes?: Record<string, { balance: number }> } }).data.volumes ?? {}
  return BigInt(volumes.USD?.balance ?? 0)
}

/**
 * Three (or more) `tally serve --cluster` processes on one etcd, each
 * advertising its peer address through its own fault proxy (`peerProxy`)
 * and reaching etcd through another (`etcdProxy`). `close` stops every
 * process and proxy and removes the data, also after a failure.
 */
export interface ClusterMember {
  readonly id: string
  readonly data: { directory: string; remove: () => void }
  peerPort: number
  peerProxy: FaultProxy
  readonly etcdProxy: FaultProxy
  server: ServerProcess | undefined
}

/**
 * Starts a node whose peer port another test file may have taken since it
 * was probed (free ports are only free when probed): a start refused for
 * that moves the node to a new peer port, behind the same proxy when it has
 * one (the proxy's address is then the one registered). A node whose peer
 * port nobody needs to know ahead listens on port 0 instead.
 */
export async function startOnFreePeerPort<T>(node: { peerPort: number; peerProxy?: FaultProxy }, startOnce: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOnce()
    } catch (error) {
      if (attempt >= 3 || !/peer port \d+ on \S+ is already in use/.test(String(error))) throw error
      node.peerPort = await freePort()
      node.peerProxy?.setTarget({ host: '127.0.0.1', port: node.peerPort })
    }
  }
}

export class ProcessCluster {
  readonly members: ClusterMember[] = []
  readonly #etcdUrlPrefix: string
  readonly #extraArgs: readonly string[]

  private constructor(etcdPrefix: string, extraArgs: readonly string[]) {
    this.#etcdUrlPrefix = etcdPrefix
    this.#extraArgs = extraArgs
  }

  /** Starts the members (not yet their processes: `startAll`). `prefix` separates clusters sharing one etcd. */
  static async create(etcd: EtcdCluster, options: { ids?: readonly string[]; prefix?: string; args?: readonly string[] } = {}): Promise<ProcessCluster> {
    const cluster = new ProcessCluster(options.prefix ?? '/tally/', options.args ?? [])
    const endpoint = etcd.endpoints[0] as string
    const etcdTarget = { host: '127.0.0.1', port: Number(endpoint.split(':')[1]) }
    try {
      for (const id of options.ids ?? ['n1', 'n2', 'n3']) {
        const peerPort = await freePort()
        const peerProxy = await FaultProxy.start({ target: { host: '127.0.0.1', port: peerPort } })
        const etcdProxy = await FaultProxy.start({ target: etcdTarget })
        cluster.members.push({ id, data: tempDirectory(`tally-${id}-`), peerPort, peerProxy, etcdProxy, server: undefined })
      }
    } catch (error) {
      await cluster.close()
      throw error
    }
    return cluster
  }

  member(id: string): ClusterMember {
    const found = this.members.find((member) => member.id === id)
    if (found === undefined) throw new Error(`no member ${id}`)
    return found
  }

  /**
   * Another test file may take a member's peer port between its kill and its
   * restart (free ports are only free when probed): a start refused for that
   * moves the member to a new peer port behind the same proxy, whose address
   * is the one registered.
   */
  async start(member: ClusterMember): Promise<ServerProcess> {
    return startOnFreePeerPort(member, () => this.startOnce(member))
  }

  private async startOnce(member: ClusterMember): Promise<ServerProcess> {
    member.server = await spawnTally({
      dataDirectory: member.data.directory,
      args: [
        '--cluster', `etcd://${member.etcdProxy.dataAddress}${this.#etcdUrlPrefix}`,
        '--node-id', member.id,
        '--peer-listen', `127.0.0.1:${member.peerPort}`,
        '--peer-advertise', member.peerProxy.dataAddress,
        '--cluster-lease-ttl-seconds', '2',
        '--log-level', process.env.TALLY_TEST_LOG_LEVEL ?? 'warn',
        ...this.#extraArgs,
      ],
    })
    return member.server
  }

  async startAll(): Promise<void> {
    await Promise.all(this.members.map((member) => this.start(member)))
  }

  async kill(member: ClusterMember): Promise<void> {
    const server = member.server
    member.server = undefined
    if (server !== undefined) await killTally(server, 'SIGKILL')
  }

  async views(): Promise<Array<ClusterView | undefined>> {
    return Promise.all(this.members.map((member) => clusterView(member.server)))
  }

  /** The caught-up primary of an epoch above `above`, polled until the deadline. */
  async primary(above = 0, deadlineMs = 40_000): Promise<{ member: ClusterMember; view: ClusterView; base: string }> {
    return until(`a primary above epoch ${above}`, async () => {
      const seen = await this.views()
      const index = seen.findIndex((view) => view !== undefined && view.role === 'primary' && view.caughtUp && view.epoch > above)
      const member = this.members[index]
      const view = seen[index]
      return member?.server === undefined || view === undefined ? undefined : { member, view, base: member.server.baseUrl }
    }, deadlineMs)
  }

  /** Every running member at the same applied index and state hash, caught up. */
  async converged(deadlineMs = 40_000): Promise<ClusterView[]> {
    return until('every node at the same applied index and state hash', async () => {
      const seen = await this.views()
      if (seen.some((view) => view === undefined || !view.caughtUp)) return undefined
      const states = new Set(seen.map((view) => `${view?.appliedIndex}:${view?.stateHash?.index}:${view?.stateHash?.hash}`))
      return states.size === 1 && seen[0]?.appliedIndex === seen[0]?.stateHash?.index ? (seen as ClusterView[]) : undefined
    }, deadlineMs)
  }

  /** What each member said, for a failure report. */
  async describe(): Promise<string> {
    const views = await this.views()
    return this.members.map((member, index) => `--- ${member.id} (${JSON.stringify(views[index])})\n${member.server?.stderr() ?? ''}`).join('\n')
  }

  async close(): Promise<void> {
    await Promise.all(this.members.map((member) => this.kill(member)))
    for (const member of this.members) {
      await member.peerProxy.close()
      await member.etcdProxy.close()
      member.data.remove()
    }
  }
}
