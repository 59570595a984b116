import { spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import path from 'node:path'
import { tempDirectory } from './temp.ts'
import { findExecutable, freePort, stopChild } from './local.ts'

/** The `etcd` executable: on PATH, or where Debian's etcd-server puts it. */
export function etcdExecutable(): string | undefined {
  return findExecutable('etcd', ['/usr/bin', '/usr/local/bin'])
}

/** The reason etcd tests skip on this machine, or false when they run (CI installs etcd-server: .ci/run). */
export const etcdSkip: string | false = etcdExecutable() === undefined ? 'etcd is not installed (apt-get install etcd-server)' : false

const healthyDeadlineMs = 30_000
const pollMs = 50

interface MemberPorts {
  readonly name: string
  readonly clientPort: number
  readonly peerPort: number
}

/**
 * One etcd process of a test's own cluster: its own data directory, loopback
 * client and peer ports. Short heartbeat and election settings let a test use
 * 1 s lease TTLs (etcd's minimum TTL follows its election timeout) and see a
 * new etcd leader quickly.
 */
export class EtcdMember {
  process: ChildProcess | undefined
  #output = ''

  constructor(
    private readonly executable: string,
    readonly ports: MemberPorts,
    private readonly dataDirectory: string,
    private readonly initialCluster: string,
  ) {}

  get name(): string {
    return this.ports.name
  }

  get clientUrl(): string {
    return `http://127.0.0.1:${this.ports.clientPort}`
  }

  /** The host:port a client dials. */
  get endpoint(): string {
    return `127.0.0.1:${this.ports.clientPort}`
  }

  get running(): boolean {
    return this.process !== undefined
  }

  /** The last lines etcd logged, for a failure message. */
  get output(): string {
    return this.#output
  }

  start(state: 'new' | 'existing'): void {
    if (this.process !== undefined) throw new Error(`etcd ${this.name} is running`)
    const peerUrl = `http://127.0.0.1:${this.ports.peerPort}`
    const child = spawn(
      this.executable,
      [
        '--name', this.name,
        '--data-dir', this.dataDirectory,
        '--listen-client-urls', this.clientUrl,
        '--advertise-client-urls', this.clientUrl,
        '--listen-peer-urls', peerUrl,
        '--initial-advertise-peer-urls', peerUrl,
        '--initial-cluster', this.initialCluster,
        '--initial-cluster-state', state,
        '--initial-cluster-token', 'tally-test',
        '--heartbeat-interval', '25',
        '--election-timeout', '250',
        '--enable-v2=false',
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    )
    this.process = child
    // If the test process ends without closing the cluster (a crash, a runner timeout), etcd goes with it.
    const killOnExit = (): void => {
      child.kill('SIGKILL')
    }
    process.once('exit', killOnExit)
    child.once('exit', () => process.off('exit', killOnExit))
    child.stderr?.on('data', (chunk: Buffer) => {
      this.#output = (this.#output + chunk.toString('utf8')).slice(-8192)
    })
    child.on('exit', () => {
      if (this.process === child) this.process = undefined
    })
    child.on('error', () => {
      if (this.process === child) this.process = undefined
    })
  }

  /** Whether this member answers its health endpoint (it is part of a cluster with a leader). */
  async healthy(): Promise<boolean> {
    try {
      const response = await fetch(`${this.clientUrl}/health`, { signal: AbortSignal.timeout(1_000) })
      const body = (await response.json()) as { health?: unknown }
      return response.ok && body.health === 'true'
    } catch {
      return false
    }
  }

  /** Whether this member is the etcd cluster's leader right now (its own metrics say so). */
  async isLeader(): Promise<boolean> {
    try {
      const response = await fetch(`${this.clientUrl}/metrics`, { signal: AbortSignal.timeout(1_000) })
      return /^etcd_server_is_leader 1$/m.test(await response.text())
    } catch {
      return false
    }
  }

  /** SIGKILL: the member dies without a goodbye, as a crashed machine does. */
  async kill(): Promise<void> {
    await this.#signal('SIGKILL')
  }

  async stop(): Promise<void> {
    await this.#signal('SIGTERM')
  }

  async #signal(signal: NodeJS.Signals): Promise<void> {
    const child = this.process
    this.process = undefined
    await stopChild(child, signal)
  }
}

/**
 * A test's own etcd: one member (or three, for a test that kills the etcd
 * leader) on free loopback ports, with its own temporary data directories.
 * `start` waits, with a deadline, until every member reports healthy;
 * `close` stops everything and removes the data. A start that loses a port
 * race is retried on new ports.
 */
export class EtcdCluster {
  private constructor(
    readonly members: readonly EtcdMember[],
    private readonly data: { remove: () => void },
  ) {}

  /** Client endpoints (host:port), one per member. */
  get endpoints(): string[] {
    return this.members.map((member) => member.endpoint)
  }

  /** The `etcd://` URL the Tally CLI takes, naming every member. */
  get url(): string {
    return `etcd://${this.endpoints.join(',')}`
  }

  static async start(options: { readonly size?: 1 | 3 } = {}): Promise<EtcdCluster> {
    const executable = etcdExecutable()
    if (executable === undefined) throw new Error('etcd is not installed')
    const size = options.size ?? 1
    let failure: unknown
    for (let attempt = 0; attempt < 3; attempt++) {
      const data = tempDirectory('tally-etcd-')
      const ports: MemberPorts[] = []
      for (let index = 0; index < size; index++) ports.push({ name: `e${index + 1}`, clientPort: await freePort(), peerPort: await freePort() })
      const initialCluster = ports.map((port) => `${port.name}=http://127.0.0.1:${port.peerPort}`).join(',')
      const members = ports.map((port) => new EtcdMember(executable, port, path.join(data.directory, port.name), initialCluster))
      const cluster = new EtcdCluster(members, data)
      try {
        for (const member of members) member.start('new')
        await cluster.waitHealthy()
        return cluster
      } catch (error) {
        failure = error
        await cluster.close()
      }
    }
    throw failure
  }

  /** Polls every running member's health until all answer healthy, or throws at the deadline. */
  async waitHealthy(deadlineMs = healthyDeadlineMs): Promise<void> {
    const deadline = Date.now() + deadlineMs
    for (;;) {
      const running = this.members.filter((member) => member.running)
      if (running.length === 0) throw new Error('no etcd member is running')
      const health = await Promise.all(running.map((member) => member.healthy()))
      if (health.every(Boolean)) return
      if (Date.now() > deadline) {
        const logs = running.map((member) => `--- ${member.name}\n${member.output}`).join('\n')
        throw new Error(`etcd not healthy within ${deadlineMs} ms:\n${logs}`)
      }
      await new Promise((resolve) => setTimeout(resolve, pollMs))
    }
  }

  /** The member that leads now, polled with a deadline (an election may be under way). */
  async leader(deadlineMs = healthyDeadlineMs): Promise<EtcdMember> {
    const deadline = Date.now() + deadlineMs
    for (;;) {
      for (const member of this.members) {
        if (member.running && (await member.isLeader())) return member
      }
      if (Date.now() > deadline) throw new Error(`no etcd leader within ${deadlineMs} ms`)
      await new Promise((resolve) => setTimeout(resolve, pollMs))
    }
  }

  /** Kills every member (SIGKILL; the data is thrown away anyway) and removes the data directories. */
  async close(): Promise<void> {
    await Promise.all(this.members.map((member) => member.kill()))
    this.data.remove()
  }
}
