// The Jepsen-style bank workload on three real `tally serve --cluster`
// processes and a real etcd. Every node's peer address is advertised
// through its own TCP fault proxy (`--peer-advertise`), and every node
// reaches etcd through another, so a seeded schedule can delay, drop and
// partition the data path and cut a node off from etcd, while SIGKILLs and
// restarts (one at a new address) hit primaries and replicas.
//
// Workload: a few accounts funded from world; concurrent transfers between
// them (idempotency key = reference = the transfer's name, overdraft
// forbidden) sent to any node (replicas forward); concurrent reads of every
// account on every node.
//
// Checker:
// - every acknowledged transfer is in the final log exactly once, at the id
//   it was acknowledged with; a refused one (INSUFFICIENT_FUND) is absent;
//   one of unknown outcome is retried with its key and then counts as one
//   of those;
// - no negative non-world balance at every read; Σ balances = 0 at every
//   read no write overlapped (a list read is not one snapshot); the final
//   balances are what the final log says, on every node;
// - after healing every node converges to the same applied index and state
//   hash;
// - each epoch had one primary (every `/_/cluster` view seen), the
//   acknowledgements' epochs (`Tally-Epoch`) never go down along the log,
//   no id was acknowledged twice, and a promoted primary held every write
//   acknowledged before its epoch (an ineligible promotion would lose one);
// - a primary cut off from etcd and from its replicas, or from its replicas
//   alone (a false suspicion: it keeps its lease while a replica is
//   promoted), acknowledges nothing sent after the cut at its epoch.
//
// `npm test` runs a fixed seed; TALLY_BANK_SEEDS=3,4,5 runs others (a long
// run is recorded in bench/results/). Skips with one line without etcd.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { EtcdCluster, etcdSkip } from '../support/etcd.ts'
import { FaultProxy } from '../support/fault-proxy.ts'
import { killTally, spawnTally } from '../support/server-process.ts'
import { tempDirectory } from '../support/temp.ts'
import { until } from './helpers.ts'
import { call, clusterView, freePort, startOnFreePeerPort, writeOnPrimary, type ClusterMember, type ClusterView } from './process-cluster.ts'

const ledger = 'bank'
const accounts = ['users:0', 'users:1', 'users:2', 'users:3']
const funding = 1_000
const writers = 3
const readers = 2

const seeds = (process.env.TALLY_BANK_SEEDS ?? '11')
  .split(',')
  .map((text) => Number(text.trim()))
  .filter((seed) => Number.isSafeInteger(seed))

/** A small seeded PRNG (mulberry32): the schedule and the workload's choices are a function of the seed. */
function random(seed: number): () => number {
  let state = seed >>> 0
  return () => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** A node of the bank run: the same shape the process-cluster harness gives its members. */
type BankNode = ClusterMember

interface Transfer {
  readonly name: string
  readonly from: string
  readonly to: string
  readonly amount: number
  /** performance.now() when first sent. */
  readonly sentAt: number
  readonly sentTo: string
}

interface Acknowledgement {
  readonly transfer: Transfer
  readonly id: number
  readonly epoch: number
  /** Answered to the retry after healing: an idempotent replay carries the epoch of the answer, not of the commit. */
  readonly retried: boolean
}

interface Isolation {
  readonly nodeId: string
  readonly epoch: number
  readonly from: number
}

type Fault = 'delay' | 'drop' | 'partition_replica' | 'isolate_primary' | 'suspect_primary' | 'kill_primary' | 'kill_replica' | 'move_replica'
const faults: readonly Fault[] = ['delay', 'drop', 'partition_replica', 'isolate_primary', 'suspect_primary', 'kill_primary', 'kill_replica', 'move_replica']

/** A client's back-off after a refusal (load shaping, not synchronisation). */
const pause = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 50))

function posting(from: string, to: string, amount: number) {
  return { source: from, destination: to, amount, asset: 'USD' }
}

for (const seed of seeds) {
  test(`bank workload under faults, seed ${seed}: no acknowledged transfer lost or doubled, Σ = 0 at every read, one primary per epoch, convergence`, { skip: etcdSkip, timeout: 240_000 }, async () => {
    const rng = random(seed)
    const pick = <T>(items: readonly T[]): T => items[Math.floor(rng() * items.length)] as T
    const etcd = await EtcdCluster.start()
    const nodes: BankNode[] = []
    const workload: Array<Promise<void>> = []
    let stopWorkload = false
    const errors: string[] = []
    const history: string[] = []
    const note = (line: string): void => {
      history.push(`${(performance.now() / 1000).toFixed(2)}s ${line}`)
    }
    try {
      const etcdTarget = { host: '127.0.0.1', port: Number((etcd.endpoints[0] as string).split(':')[1]) }
      for (const id of ['n1', 'n2', 'n3']) {
        const peerPort = await freePort()
        nodes.push({
          id,
          data: tempDirectory(`tally-bank-${id}-`),
          peerPort,
          peerProxy: await FaultProxy.start({ target: { host: '127.0.0.1', port: peerPort } }),
          etcdProxy: await FaultProxy.start({ target: etcdTarget }),
          server: undefined,
        })
      }
      const start = async (node: BankNode): Promise<void> => {
        node.server = await startOnFreePeerPort(node, () => spawnTally({
          dataDirectory: node.data.directory,
          args: [
            '--cluster', `etcd://${node.etcdProxy.dataAddress}`,
            '--node-id', node.id,
            '--peer-listen', `127.0.0.1:${node.peerPort}`,
            '--peer-advertise', node.peerProxy.dataAddress,
            '--cluster-lease-ttl-seconds', '2',
            '--log-level', process.env.TALLY_TEST_LOG_LEVEL ?? 'warn',
          ],
        }))
        note(`${node.id} started at ${node.server.baseUrl}, peer ${node.peerProxy.dataAddress} -> ${node.peerPort}`)
      }
      const kill = async (node: BankNode): Promise<void> => {
        const server = node.server
        node.server = undefined
        if (server !== undefined) await killTally(server, 'SIGKILL')
        note(`${node.id} killed`)
      }
      await Promise.all(nodes.map(start))

      // ------------------------------------------------------------ observation
      /** Every primary seen per epoch, from every `/_/cluster` view. */
      const primariesByEpoch = new Map<number, Set<string>>()
      const views = async (): Promise<Array<ClusterView | undefined>> => {
        const seen = await Promise.all(nodes.map((node) => clusterView(node.server)))
        seen.forEach((view, index) => {
          if (view?.role !== 'primary') return
          const set = primariesByEpoch.get(view.epoch) ?? new Set<string>()
          set.add((nodes[index] as BankNode).id)
          primariesByEpoch.set(view.epoch, set)
        })
        return seen
      }
      /** The primary of the highest epoch that answers as a caught-up primary. */
      const primary = async (above = 0): Promise<{ node: BankNode; view: ClusterView }> =>
        until(`a primary above epoch ${above}`, async () => {
          const seen = await views()
          let best: { node: BankNode; view: ClusterView } | undefined
          seen.forEach((view, index) => {
            if (view !== undefined && view.role === 'primary' && view.caughtUp && view.epoch > above && (best === undefined || view.epoch > best.view.epoch)) best = { node: nodes[index] as BankNode, view }
          })
          return best
        }, 40_000)

      const first = await primary()
      note(`formed: ${first.node.id} primary at epoch ${first.view.epoch}`)
      assert.equal((await writeOnPrimary(first.node.server?.baseUrl as string, `/v2/${ledger}`, {})).status, 204)
      for (const account of accounts) {
        const funded = await writeOnPrimary(first.node.server?.baseUrl as string, `/v2/${ledger}/transactions`, { postings: [posting('world', account, funding)], reference: `fund-${account}` }, { 'Idempotency-Key': `fund-${account}` })
        assert.equal(funded.status, 200, JSON.stringify(funded.json))
      }

      // ------------------------------------------------------------ workload
      const acknowledged: Acknowledgement[] = []
      const refused = new Set<string>()
      const unknown = new Map<string, Transfer>()
      let readsChecked = 0
      let quietReads = 0
      let next = 0
      const running = (): BankNode[] => nodes.filter((node) => node.server !== undefined)
      const body = (transfer: Transfer) => ({ postings: [posting(transfer.from, transfer.to, transfer.amount)], reference: transfer.name })
      /** Classifies one answer: acknowledged, refused for good, or of unknown outcome (retried at the end). */
      const settle = (transfer: Transfer, reply: { status: number; headers: Headers; json: unknown } | undefined, retried = false): void => {
        if (reply?.status === 200) {
          const data = (reply.json as { data: { id: number | string } }).data
          acknowledged.push({ transfer, id: Number(data.id), epoch: Number(reply.headers.get('tally-epoch')), retried })
          unknown.delete(transfer.name)
          return
        }
        const code = (reply?.json as { errorCode?: string } | undefined)?.errorCode
        if (reply?.status === 400 && code === 'INSUFFICIENT_FUND') {
          refused.add(transfer.name)
          unknown.delete(transfer.name)
          return
        }
        if (reply !== undefined && reply.status !== 503 && reply.status !== 409) errors.push(`${transfer.name}: unexpected answer ${reply.status} ${JSON.stringify(reply.json)}`)
        unknown.set(transfer.name, transfer)
      }
      const writer = async (): Promise<void> => {
        while (!stopWorkload) {
          const target = pick(running())
          if (target?.server === undefined) {
            await pause()
            continue
          }
          const from = pick(accounts)
          const to = pick(accounts.filter((account) => account !== from))
          const transfer: Transfer = { name: `t-${seed}-${next++}`, from, to, amount: 1 + Math.floor(rng() * 300), sentAt: performance.now(), sentTo: target.id }
          const reply = await call(target.server.baseUrl, 'POST', `/v2/${ledger}/transactions`, body(transfer), { 'Idempotency-Key': transfer.name }, 5_000).catch(() => undefined)
          settle(transfer, reply)
          // A refused write (503: no primary yet, lease lapsed) is not retried at once: the next one goes elsewhere.
          if (reply === undefined || reply.status === 503) await pause()
        }
      }
      const reader = async (): Promise<void> => {
        while (!stopWorkload) {
          const target = pick(running())
          if (target?.server === undefined) {
            await pause()
            continue
          }
          // The node may be killed while the read runs: its address is taken once.
          const base = target.server.baseUrl
          const reply = await call(base, 'GET', `/v2/${ledger}/accounts?pageSize=100&expand=volumes`, undefined, {}, 5_000).catch(() => undefined)
          if (reply?.status !== 200) {
            await pause()
            continue
          }
          const listed = (reply.json as { cursor: { data: Array<{ address: string; volumes?: Record<string, { balance: number | string }> }> } }).cursor.data
          let sum = 0n
          for (const account of listed) {
            const held = BigInt(account.volumes?.USD?.balance ?? 0)
            sum += held
            if (account.address !== 'world' && held < 0n) errors.push(`read on ${target.id} at index ${reply.headers.get('tally-applied-index')}: ${account.address} holds ${held}`)
          }
          readsChecked += 1
          // A list read is not one snapshot (each account's volumes are read in turn: docs/reads.md), so Σ is
          // judged only on a read no write overlapped: the node's applied index the same before and after it.
          const startedAt = reply.headers.get('tally-applied-index')
          const after = await call(base, 'GET', '/_/cluster', undefined, {}, 5_000).catch(() => undefined)
          if (after?.status !== 200 || String((after.json as ClusterView).appliedIndex) !== startedAt) continue
          quietReads += 1
          if (sum !== 0n) errors.push(`read on ${target.id} at index ${startedAt}: Σ balances = ${sum}`)
        }
      }
      for (let i = 0; i < writers; i++) workload.push(writer())
      for (let i = 0; i < readers; i++) workload.push(reader())
      const progress = async (what: string, more: number, deadlineMs = 30_000): Promise<void> => {
        const target = acknowledged.length + more
        await until(`${more} more acknowledged transfers (${what})`, async () => {
          await views()
          return acknowledged.length >= target ? true : undefined
        }, deadlineMs)
      }
      /**
       * The node is back at the primary's applied index: as a caught-up replica, or leading again. Leadership can
       * move back to it meanwhile: after a false suspicion heals, the replicas may suspect the new primary before
       * its links form (at this machine's load) and promote the old one again, an epoch change that loses nothing.
       */
      const caughtUp = async (node: BankNode): Promise<void> => {
        const lead = await primary()
        await until(`${node.id} caught up`, async () => {
          const seen = await views()
          const view = seen[nodes.indexOf(node)]
          if (view === undefined || !view.caughtUp || view.appliedIndex < lead.view.appliedIndex) return undefined
          if (view.role === 'replica') return true
          const leads = view.role === 'primary' && seen.every((other) => other === view || other?.role !== 'primary' || other.epoch < view.epoch)
          if (leads) note(`${node.id} leads again at epoch ${view.epoch}`)
          return leads ? true : undefined
        }, 40_000)
      }
      const replicaOf = (lead: BankNode): BankNode => pick(nodes.filter((node) => node !== lead))
      await progress('before any fault', 10)

      // ------------------------------------------------------------ faults, in a seeded order
      const isolations: Isolation[] = []
      /** After each promotion: the new primary holds every transfer acknowledged before its epoch. */
      const promotedHoldsAcknowledged = async (lead: { node: BankNode; view: ClusterView }): Promise<void> => {
        const before = acknowledged.filter((ack) => ack.epoch < lead.view.epoch)
        const log = await transactions(lead.node.server?.baseUrl as string)
        for (const ack of before) {
          if (log.get(ack.id)?.reference !== ack.transfer.name) errors.push(`${lead.node.id}, promoted at epoch ${lead.view.epoch}, lacks ${ack.transfer.name} acknowledged at epoch ${ack.epoch} as ${ack.id}`)
        }
      }
      const schedule = [...faults].sort(() => rng() - 0.5)
      note(`schedule: ${schedule.join(', ')}`)
      for (const fault of schedule) {
        const lead = await primary()
        note(`fault ${fault} (primary ${lead.node.id} at epoch ${lead.view.epoch})`)
        switch (fault) {
          case 'delay': {
            for (const node of nodes) node.peerProxy.set('both', { delayMs: 5 + Math.floor(rng() * 40) })
            await progress(fault, 10)
            for (const node of nodes) node.peerProxy.heal()
            break
          }
          case 'drop': {
            for (const node of nodes) node.peerProxy.dropConnections()
            await progress(fault, 10)
            break
          }
          case 'partition_replica': {
            const cut = replicaOf(lead.node)
            cut.peerProxy.partition()
            // The primary commits with the other replica (a quorum) meanwhile.
            await progress(fault, 10)
            cut.peerProxy.heal()
            await caughtUp(cut)
            break
          }
          case 'isolate_primary': {
            // The primary loses etcd and both replicas: its lease lapses, a replica is promoted.
            const old = lead.node
            isolations.push({ nodeId: old.id, epoch: lead.view.epoch, from: performance.now() })
            old.etcdProxy.partition()
            for (const node of nodes) if (node !== old) node.peerProxy.partition()
            const promoted = await until('a replica promoted while the primary is cut off', async () => {
              const seen = await views()
              const index = seen.findIndex((view, i) => nodes[i] !== old && view?.role === 'primary' && view.epoch > lead.view.epoch)
              return index < 0 ? undefined : (nodes[index] as BankNode)
            }, 40_000)
            note(`${promoted.id} promoted while ${old.id} is cut off`)
            // The replicas reach each other again; the old primary still has no etcd: its links meet the new epoch and are fenced.
            for (const node of nodes) node.peerProxy.heal()
            const next = await primary(lead.view.epoch)
            await promotedHoldsAcknowledged(next)
            await progress(fault, 10)
            old.etcdProxy.heal()
            await caughtUp(old)
            break
          }
          case 'suspect_primary': {
            // A false suspicion: the primary loses both replicas but keeps etcd (and its lease). Both replicas suspect it,
            // a replica is promoted while the old primary still runs; fencing on the commit mark, not the lease, keeps
            // every acknowledged transfer. It cannot commit without a replica, so it acknowledges nothing after the cut.
            const old = lead.node
            isolations.push({ nodeId: old.id, epoch: lead.view.epoch, from: performance.now() })
            for (const node of nodes) if (node !== old) node.peerProxy.partition()
            const promoted = await until('a replica promoted on suspicion while the primary keeps etcd', async () => {
              const seen = await views()
              const index = seen.findIndex((view, i) => nodes[i] !== old && view?.role === 'primary' && view.epoch > lead.view.epoch)
              return index < 0 ? undefined : (nodes[index] as BankNode)
            }, 40_000)
            note(`${promoted.id} promoted on suspicion while ${old.id} keeps etcd`)
            for (const node of nodes) node.peerProxy.heal()
            const next = await primary(lead.view.epoch)
            await promotedHoldsAcknowledged(next)
            await progress(fault, 10)
            await caughtUp(old)
            break
          }
          case 'kill_primary': {
            await kill(lead.node)
            const next = await primary(lead.view.epoch)
            note(`${next.node.id} promoted at epoch ${next.view.epoch}`)
            await promotedHoldsAcknowledged(next)
            await progress(fault, 10)
            await start(lead.node)
            await caughtUp(lead.node)
            break
          }
          case 'kill_replica': {
            const victim = replicaOf(lead.node)
            await kill(victim)
            await progress(fault, 10)
            await start(victim)
            await caughtUp(victim)
            break
          }
          case 'move_replica': {
            // Restarted at a new peer address (and a new advertised one): the primary's link follows the registration.
            const victim = replicaOf(lead.node)
            await kill(victim)
            await victim.peerProxy.close()
            victim.peerPort = await freePort()
            victim.peerProxy = await FaultProxy.start({ target: { host: '127.0.0.1', port: victim.peerPort } })
            await start(victim)
            await progress(fault, 10)
            await caughtUp(victim)
            break
          }
        }
      }

      // ------------------------------------------------------------ heal, settle, converge
      stopWorkload = true
      await Promise.all(workload)
      for (const node of nodes) {
        node.peerProxy.heal()
        node.etcdProxy.heal()
      }
      const lead = await primary()
      for (const transfer of [...unknown.values()]) {
        const reply = await writeOnPrimary(lead.node.server?.baseUrl as string, `/v2/${ledger}/transactions`, body(transfer), { 'Idempotency-Key': transfer.name })
        settle(transfer, reply, true)
      }
      assert.equal(unknown.size, 0, `outcomes still unknown: ${[...unknown.keys()].join(', ')}`)
      const converged = await until('every node at the same applied index and state hash', async () => {
        const seen = await views()
        if (seen.some((view) => view === undefined || !view.caughtUp)) return undefined
        const states = new Set(seen.map((view) => `${view?.appliedIndex}:${view?.stateHash?.index}:${view?.stateHash?.hash}`))
        return states.size === 1 && seen[0]?.appliedIndex === seen[0]?.stateHash?.index ? seen : undefined
      }, 40_000)
      note(`converged at index ${converged[0]?.appliedIndex}`)

      // ------------------------------------------------------------ the checker
      const log = await transactions(lead.node.server?.baseUrl as string)
      const byReference = new Map<string, number[]>()
      for (const [id, transaction] of log) {
        if (transaction.reference === undefined) continue
        byReference.set(transaction.reference, [...(byReference.get(transaction.reference) ?? []), id])
      }
      for (const [reference, ids] of byReference) if (ids.length > 1) errors.push(`${reference} applied ${ids.length} times: ${ids.join(', ')}`)
      const ackedIds = new Map<number, string>()
      for (const ack of acknowledged) {
        const found = byReference.get(ack.transfer.name)
        if (found === undefined) errors.push(`${ack.transfer.name} acknowledged as ${ack.id} at epoch ${ack.epoch} is lost`)
        else if (found[0] !== ack.id) errors.push(`${ack.transfer.name} acknowledged as ${ack.id} is ${found[0]} in the log`)
        const other = ackedIds.get(ack.id)
        if (other !== undefined && other !== ack.transfer.name) errors.push(`id ${ack.id} acknowledged twice: ${other} and ${ack.transfer.name}`)
        ackedIds.set(ack.id, ack.transfer.name)
        if (!(ack.epoch > 0)) errors.push(`${ack.transfer.name} acknowledged without a Tally-Epoch`)
      }
      for (const name of refused) if (byReference.has(name)) errors.push(`${name} refused (INSUFFICIENT_FUND) but applied`)
      // Epochs never go down along the log: a write acknowledged by a deposed primary after a newer epoch began would.
      const ordered = acknowledged.filter((ack) => !ack.retried).sort((a, b) => a.id - b.id)
      for (let i = 1; i < ordered.length; i++) {
        const before = ordered[i - 1] as Acknowledgement
        const after = ordered[i] as Acknowledgement
        if (after.epoch < before.epoch) errors.push(`${after.transfer.name} (id ${after.id}) acknowledged at epoch ${after.epoch} after ${before.transfer.name} (id ${before.id}) at epoch ${before.epoch}`)
      }
      for (const [epoch, primaries] of primariesByEpoch) if (primaries.size > 1) errors.push(`epoch ${epoch} had primaries ${[...primaries].join(', ')}`)
      for (const isolation of isolations) {
        for (const ack of acknowledged) {
          if (ack.epoch === isolation.epoch && ack.transfer.sentAt > isolation.from) errors.push(`${ack.transfer.name}, sent after ${isolation.nodeId} was cut off, acknowledged at its epoch ${isolation.epoch}`)
        }
      }
      // The final balances are what the log says, on every node; Σ = 0, nothing negative but world.
      const expected = new Map<string, bigint>()
      for (const transaction of log.values()) {
        for (const p of transaction.postings) {
          expected.set(p.source, (expected.get(p.source) ?? 0n) - BigInt(p.amount))
          expected.set(p.destination, (expected.get(p.destination) ?? 0n) + BigInt(p.amount))
        }
      }
      const finalIndex = converged[0]?.appliedIndex ?? 0
      for (const node of nodes) {
        const reply = await call(node.server?.baseUrl as string, 'GET', `/v2/${ledger}/accounts?pageSize=100&expand=volumes`, undefined, { 'Tally-Min-Applied-Index': String(finalIndex) })
        assert.equal(reply.status, 200)
        const listed = (reply.json as { cursor: { data: Array<{ address: string; volumes?: Record<string, { balance: number | string }> }> } }).cursor.data
        for (const account of listed) assert.equal(BigInt(account.volumes?.USD?.balance ?? 0), expected.get(account.address) ?? 0n, `${account.address} on ${node.id}`)
      }
      let sum = 0n
      for (const [account, held] of expected) {
        sum += held
        if (account !== 'world') assert.ok(held >= 0n, `${account} ends at ${held}`)
      }
      assert.equal(sum, 0n)
      note(`acknowledged ${acknowledged.length}, refused ${refused.size}, reads checked ${readsChecked} (Σ on ${quietReads}), epochs ${[...primariesByEpoch.keys()].join(', ')}`)
      assert.deepEqual(errors, [])
      assert.ok(acknowledged.length >= 60, `only ${acknowledged.length} transfers acknowledged`)
      assert.ok(readsChecked > 0 && quietReads > 0, `reads checked: ${readsChecked}, of which for Σ: ${quietReads}`)
      assert.ok(primariesByEpoch.size >= 3, `failovers: epochs seen ${[...primariesByEpoch.keys()].join(', ')}`)
      if (process.env.TALLY_BANK_VERBOSE === '1') process.stderr.write(`${history.join('\n')}\n`)
    } catch (error) {
      process.stderr.write(`--- seed ${seed} history\n${history.join('\n')}\n--- errors\n${errors.slice(0, 30).join('\n')}\n`)
      for (const node of nodes) process.stderr.write(`--- ${node.id} (${JSON.stringify(await clusterView(node.server))})\n${node.server?.stderr() ?? ''}\n`)
      throw error
    } finally {
      stopWorkload = true
      await Promise.allSettled(workload)
      await Promise.all(nodes.map(async (node) => (node.server === undefined ? undefined : killTally(node.server, 'SIGKILL'))))
      for (const node of nodes) {
        await node.peerProxy.close()
        await node.etcdProxy.close()
      }
      await etcd.close()
      for (const node of nodes) node.data.remove()
    }
  })
}

interface LoggedTransaction {
  reference?: string
  postings: Array<{ source: string; destination: string; amount: number | string }>
}

/** The whole transaction log of the bank ledger as one node holds it, by id (paged). */
async function transactions(base: string): Promise<Map<number, LoggedTransaction>> {
  const found = new Map<number, LoggedTransaction>()
  let cursor: string | undefined
  for (let page = 0; page < 1000; page++) {
    const reply = await call(base, 'GET', `/v2/${ledger}/transactions?pageSize=1000${cursor === undefined ? '' : `&cursor=${encodeURIComponent(cursor)}`}`)
    assert.equal(reply.status, 200, JSON.stringify(reply.json))
    const listed = (reply.json as { cursor: { hasMore: boolean; next?: string; data: Array<LoggedTransaction & { id: number | string }> } }).cursor
    for (const transaction of listed.data) found.set(Number(transaction.id), transaction)
    if (!listed.hasMore || listed.next === undefined) return found
    cursor = listed.next
  }
  throw new Error('more than 1000 pages of transactions')
}
