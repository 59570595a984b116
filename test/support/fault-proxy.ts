/**
 * A TCP fault proxy for cluster tests: sits between two nodes and, per
 * direction, delays bytes, pauses them (a partition: nothing is delivered,
 * what was sent waits as it would in kernel buffers, and flows again on
 * heal) or drops every connection. `toTarget` is the direction from the
 * dialing side (a primary) to the listening side (a replica); `fromTarget`
 * the other. Bytes are never reordered, duplicated or altered: TCP does not
 * do that; corruption is tested at the frame level.
 *
 *   const proxy = await FaultProxy.start({ target: replica.address })
 *   proxy.set('both', { delayMs: 20 })
 *   proxy.partition()       // both directions paused
 *   proxy.heal()
 *   proxy.dropConnections() // RST both sides of every open connection
 *   proxy.refuse(true)      // new connections are accepted and closed at once
 *   await proxy.close()
 */
import * as net from 'node:net'

export type Direction = 'toTarget' | 'fromTarget'

export interface DirectionFault {
  /** Every chunk is delivered this long after it arrived (order kept). */
  delayMs: number
  /** Nothing is delivered while paused. */
  paused: boolean
}

export interface ProxyAddress {
  host: string
  port: number
}

/** Bytes held per pipe before the proxy stops reading its source (TCP pushes back). */
const heldBytesMax = 8 * 1024 * 1024

class Pipe {
  readonly #from: net.Socket
  readonly #to: net.Socket
  readonly #fault: () => DirectionFault
  readonly #queue: Array<{ chunk: Buffer; at: number }> = []
  #heldBytes = 0
  #timer: NodeJS.Timeout | undefined
  #sourcePaused = false
  #sourceEnded = false

  constructor(from: net.Socket, to: net.Socket, fault: () => DirectionFault) {
    this.#from = from
    this.#to = to
    this.#fault = fault
    from.on('data', (chunk: Buffer) => {
      this.#queue.push({ chunk, at: Date.now() + this.#fault().delayMs })
      this.#heldBytes += chunk.byteLength
      if (this.#heldBytes > heldBytesMax && !this.#sourcePaused) {
        this.#sourcePaused = true
        from.pause()
      }
      this.pump()
    })
    // A half-close travels after the bytes before it (an ERROR frame, then FIN).
    from.on('end', () => {
      this.#sourceEnded = true
      this.pump()
    })
  }

  /** Delivers whatever is due, unless paused; re-arms itself for the next chunk. */
  pump(): void {
    if (this.#timer !== undefined) {
      clearTimeout(this.#timer)
      this.#timer = undefined
    }
    if (this.#fault().paused || this.#to.destroyed) return
    const now = Date.now()
    while (this.#queue.length > 0) {
      const head = this.#queue[0]
      if (head === undefined) break
      if (head.at > now) {
        this.#timer = setTimeout(() => this.pump(), head.at - now)
        break
      }
      this.#queue.shift()
      this.#heldBytes -= head.chunk.byteLength
      this.#to.write(head.chunk)
    }
    if (this.#sourceEnded && this.#queue.length === 0) this.#to.end()
    if (this.#sourcePaused && this.#heldBytes <= heldBytesMax / 2) {
      this.#sourcePaused = false
      this.#from.resume()
    }
  }

  stop(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer)
    this.#timer = undefined
  }
}

interface Link {
  client: net.Socket
  upstream: net.Socket
  pipes: Pipe[]
}

export class FaultProxy {
  readonly #server: net.Server
  #target: ProxyAddress
  #address: ProxyAddress | undefined
  readonly #links = new Set<Link>()
  readonly #faults: Record<Direction, DirectionFault> = {
    toTarget: { delayMs: 0, paused: false },
    fromTarget: { delayMs: 0, paused: false },
  }
  #refusing = false
  /** Connections accepted over the proxy's life. */
  accepted = 0

  private constructor(target: ProxyAddress) {
    this.#target = target
    this.#server = net.createServer({ allowHalfOpen: true }, (client) => this.#accept(client))
  }

  static async start(options: { target: ProxyAddress; host?: string }): Promise<FaultProxy> {
    const proxy = new FaultProxy(options.target)
    await new Promise<void>((resolve, reject) => {
      proxy.#server.once('error', reject)
      proxy.#server.listen(0, options.host ?? '127.0.0.1', () => resolve())
    })
    const address = proxy.#server.address()
    if (address === null || typeof address !== 'object') throw new Error('proxy has no TCP address')
    proxy.#address = { host: address.address, port: address.port }
    return proxy
  }

  get address(): ProxyAddress {
    if (this.#address === undefined) throw new Error('proxy not listening')
    return this.#address
  }

  /** `host:port`, as an endpoint's data address. */
  get dataAddress(): string {
    return `${this.address.host}:${this.address.port}`
  }

  get openConnections(): number {
    return this.#links.size
  }

  set(direction: Direction | 'both', fault: Partial<DirectionFault>): void {
    for (const which of direction === 'both' ? (['toTarget', 'fromTarget'] as const) : [direction]) {
      this.#faults[which] = { ...this.#faults[which], ...fault }
    }
    for (const link of this.#links) for (const pipe of link.pipes) pipe.pump()
  }

  partition(direction: Direction | 'both' = 'both'): void {
    this.set(direction, { paused: true })
  }

  heal(): void {
    this.set('both', { paused: false, delayMs: 0 })
  }

  /** New connections are accepted and closed at once (the listener looks unreachable). */
  refuse(refusing: boolean): void {
    this.#refusing = refusing
  }

  /** A node moved: later connections go to `target`. */
  setTarget(target: ProxyAddress): void {
    this.#target = target
  }

  /** Resets both sides of every open connection. */
  dropConnections(): void {
    for (const link of this.#links) this.#drop(link)
  }

  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()))
    this.dropConnections()
    await closed
  }

  #accept(client: net.Socket): void {
    this.accepted += 1
    if (this.#refusing) {
      client.destroy()
      return
    }
    const upstream = net.connect({ host: this.#target.host, port: this.#target.port, allowHalfOpen: true })
    const link: Link = { client, upstream, pipes: [] }
    link.pipes.push(new Pipe(client, upstream, () => this.#faults.toTarget))
    link.pipes.push(new Pipe(upstream, client, () => this.#faults.fromTarget))
    this.#links.add(link)
    const drop = (): void => this.#drop(link)
    for (const socket of [client, upstream]) {
      socket.on('error', drop)
      socket.on('close', drop)
    }
  }

  #drop(link: Link): void {
    if (!this.#links.delete(link)) return
    for (const pipe of link.pipes) pipe.stop()
    link.client.destroy()
    link.upstream.destroy()
  }
}
