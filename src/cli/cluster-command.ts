/**
 * `tally cluster`: the operator's view of the control plane in etcd.
 *
 * - `status`: the assignment (epoch, primary, replicas, durability, commit,
 *   lineage resets), the coordinator, and every member with its role,
 *   endpoint and what it reports; then what each registered node answers
 *   at `/_/cluster` (a short timeout each): its own LSNs and, on the
 *   primary, each replica's positions and link and the recent recovery log.
 * - `add NODE` / `remove NODE`: membership changes, each one
 *   compare-and-swap of the assignment (a new epoch). A node joins as a
 *   learner and the coordinator makes it a voter once it caught up; the
 *   primary, an unknown node, and a removal below what the durability mode
 *   needs are refused.
 * - `promote --desperate NODE`: the explicit action that may lose
 *   acknowledged data; refused unless the primary is gone and NODE is the
 *   member the policy would pick. Logged on stderr, with the recovery event.
 */
import { parseArgs } from 'node:util'
import { ControlPlaneDataError, ControlPlaneUnavailable, EtcdControlPlane, changeMembership, clusterStatus, nodeIdOf, parseClusterUrl, promoteDesperately } from '../cluster/index.ts'
import type { ClusterStatus, MembershipOutcome } from '../cluster/index.ts'
import type { ClusterRuntimeView } from '../cluster/runtime-status.ts'
import type { NodeClusterStatus } from '../server/index.ts'
import { formatRecoveryEvent } from '../replication/index.ts'

export const clusterExit = { ok: 0, failed: 1, usage: 2 } as const

const callTimeoutMsDefault = 3_000
const nodeTimeoutMsDefault = 1_000
/** Recovery log lines the human status prints (the JSON carries all the node keeps). */
const recoveryLinesShown = 15
/** A node's answer larger than this is not read (the recovery log is bounded; this bounds a stranger). */
const nodeAnswerBytesMax = 1024 * 1024

const help = `Usage: tally cluster <command> --cluster etcd://HOST:PORT[,HOST:PORT...][/PREFIX] [options]

Commands:
  status                   roles, epoch, members, endpoints and what each node reports
  add NODE                 NODE (started and registered) joins as a learner: it receives
                           the log, and the coordinator makes it a voter once it holds
                           the acknowledged commit
  remove NODE              NODE leaves the assignment (refused for the primary, and when
                           the voters left are too few for the durability mode)
  promote --desperate NODE make NODE primary although no eligible replica exists:
                           committed (acknowledged) transactions it lacks are LOST.
                           Refused while the primary is registered, or when another
                           member keeps more of the committed log.

Options (each also read from the environment variable shown):
  --cluster URL            the etcd holding the cluster's state      [TALLY_CLUSTER]
  --timeout-ms MS          deadline of each call to etcd             [TALLY_CLUSTER_TIMEOUT_MS, default ${callTimeoutMsDefault}]
  --node-timeout-ms MS     status: deadline of each node's /_/cluster  [TALLY_CLUSTER_NODE_TIMEOUT_MS, default ${nodeTimeoutMsDefault}]
  --json                   status, add, remove: print one JSON object
  -h, --help               show this help

status asks each registered node's control address (http://ADDRESS/_/cluster),
with the bearer token in TALLY_TOKEN when set (a server run with --auth-clients).

The coordinator (elected among the running nodes) promotes an eligible replica
by itself when the primary's lease expires; only the desperate promotion is an
operator's action. Each add or remove writes a new assignment (a new epoch):
writes the primary had not committed yet end as of unknown outcome (retry them
with the same idempotency key).

Exit codes: 0 done, 1 etcd unreachable or the action refused, 2 bad usage.
`

export interface ClusterIo {
  readonly out: (text: string) => void
  readonly err: (text: string) => void
  readonly env: Readonly<Record<string, string | undefined>>
}

class UsageError extends Error {}

interface ClusterArgs {
  readonly command: 'status' | 'promote' | 'add' | 'remove'
  readonly url: string
  readonly timeoutMs: number
  readonly nodeTimeoutMs: number
  readonly json: boolean
  readonly desperate: string | undefined
  /** add, remove: the node. */
  readonly member: string | undefined
}

function parseClusterArgs(argv: string[], env: ClusterIo['env']): ClusterArgs | 'help' {
  let parsed: ReturnType<typeof parseArgs<{ options: typeof options; allowPositionals: true; strict: true; args: string[] }>>
  const options = {
    cluster: { type: 'string' },
    'timeout-ms': { type: 'string' },
    'node-timeout-ms': { type: 'string' },
    json: { type: 'boolean' },
    desperate: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  } as const
  try {
    parsed = parseArgs({ args: argv, options, allowPositionals: true, strict: true })
  } catch (error) {
    throw new UsageError((error as Error).message)
  }
  const { values, positionals } = parsed
  if (values.help === true) return 'help'
  const [command, ...extra] = positionals
  if (command === undefined) throw new UsageError('a command is needed: status, add, remove or promote')
  if (command !== 'status' && command !== 'promote' && command !== 'add' && command !== 'remove') throw new UsageError(`unknown command ${JSON.stringify(command)}: status, add, remove or promote`)
  const takesNode = command === 'add' || command === 'remove'
  if (takesNode && extra.length === 0) throw new UsageError(`${command} needs a NODE id`)
  const member = takesNode ? extra.shift() : undefined
  if (extra.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(extra[0])}`)
  const url = values.cluster ?? nonEmpty(env.TALLY_CLUSTER)
  if (url === undefined) throw new UsageError('--cluster etcd://HOST:PORT is needed (or TALLY_CLUSTER)')
  const milliseconds = (flag: string, text: string | undefined, fallback: number): number => {
    if (text === undefined) return fallback
    if (!/^[1-9][0-9]{0,6}$/.test(text)) throw new UsageError(`--${flag}: expected a positive integer of milliseconds, got ${JSON.stringify(text)}`)
    return Number(text)
  }
  const timeoutMs = milliseconds('timeout-ms', values['timeout-ms'] ?? nonEmpty(env.TALLY_CLUSTER_TIMEOUT_MS), callTimeoutMsDefault)
  const nodeTimeoutMs = milliseconds('node-timeout-ms', values['node-timeout-ms'] ?? nonEmpty(env.TALLY_CLUSTER_NODE_TIMEOUT_MS), nodeTimeoutMsDefault)
  if (command === 'promote' && values.desperate === undefined) {
    throw new UsageError('promote needs --desperate NODE: the coordinator promotes eligible replicas by itself; an operator only forces a promotion that may lose data')
  }
  if (command !== 'promote' && values.desperate !== undefined) throw new UsageError('--desperate goes with promote')
  return { command, url, timeoutMs, nodeTimeoutMs, json: values.json === true, desperate: values.desperate, member }
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value === '' ? undefined : value
}

export async function runClusterCommand(argv: string[], io: ClusterIo): Promise<number> {
  let args: ClusterArgs | 'help'
  let connection: { endpoints: string[]; prefix: string }
  try {
    args = parseClusterArgs(argv, io.env)
    if (args === 'help') {
      io.out(help)
      return clusterExit.ok
    }
    connection = parseClusterUrl(args.url)
  } catch (error) {
    io.err(`tally cluster: ${(error as Error).message}\n`)
    return clusterExit.usage
  }
  let nodeId
  try {
    const named = args.desperate ?? args.member
    nodeId = named === undefined ? undefined : nodeIdOf(named)
  } catch (error) {
    io.err(`tally cluster: ${args.command === 'promote' ? '--desperate' : args.command}: ${(error as Error).message}\n`)
    return clusterExit.usage
  }
  const control = EtcdControlPlane.connect({ endpoints: connection.endpoints, prefix: connection.prefix, callTimeoutMs: args.timeoutMs })
  try {
    if ((args.command === 'add' || args.command === 'remove') && nodeId !== undefined) {
      const outcome = await changeMembership(control, args.command, nodeId)
      if (args.json) io.out(`${JSON.stringify(membershipJson(args.command, nodeId, outcome))}\n`)
      if (!outcome.ok) {
        io.err(`tally cluster: ${args.command} ${nodeId} refused (${outcome.reason}): ${outcome.message}\n`)
        return clusterExit.failed
      }
      const { assignment } = outcome
      if (!args.json) {
        const learners = assignment.learnerIds.length === 0 ? '-' : assignment.learnerIds.join(',')
        const what = args.command === 'add' ? `${nodeId} joined as a learner (the coordinator makes it a voter once it caught up)` : `${nodeId} removed`
        io.out(`${what}; epoch ${assignment.epoch}  primary ${assignment.primaryId}  voters ${assignment.replicaIds.join(',') || '-'}  learners ${learners}\n`)
      }
      return clusterExit.ok
    }
    if (nodeId === undefined) {
      const status = await clusterStatus(control)
      const nodes = await askNodes(status, args.nodeTimeoutMs, nonEmpty(io.env.TALLY_TOKEN))
      io.out(args.json ? `${JSON.stringify(statusJson(status, nodes))}\n` : formatStatus(args.url, status, nodes))
      return clusterExit.ok
    }
    io.err(`tally cluster: DESPERATE promotion of ${nodeId} requested: acknowledged transactions it lacks will be lost\n`)
    const outcome = await promoteDesperately(control, nodeId)
    if (!outcome.ok) {
      io.err(`tally cluster: promotion refused (${outcome.reason}): ${outcome.message}\n`)
      return clusterExit.failed
    }
    io.err(`tally cluster: ${formatRecoveryEvent(outcome.event)}\n`)
    const loss = outcome.lostEntries > 0 ? `committed entries after LSN ${outcome.keptLsn} (${outcome.lostEntries}) may be lost` : 'no committed entry is lost'
    io.out(`${nodeId} is primary at epoch ${outcome.assignment.epoch}; ${loss}\n`)
    return clusterExit.ok
  } catch (error) {
    if (error instanceof ControlPlaneUnavailable || error instanceof ControlPlaneDataError) {
      io.err(`tally cluster: ${error.message}\n`)
      return clusterExit.failed
    }
    throw error
  } finally {
    control.close()
  }
}

export async function clusterCommand(argv: string[]): Promise<number> {
  return runClusterCommand(argv, {
    out: (text) => process.stdout.write(text),
    err: (text) => process.stderr.write(text),
    env: process.env,
  })
}

/** What one node answered at `/_/cluster`, or why it did not. */
type NodeAnswer = { readonly ok: true; readonly view: NodeClusterStatus & { readonly replication?: ClusterRuntimeView } } | { readonly ok: false; readonly error: string }

/** Each registered node's `/_/cluster`, in parallel, each bounded by the timeout and a size limit. */
async function askNodes(status: ClusterStatus, timeoutMs: number, token: string | undefined): Promise<Map<string, NodeAnswer>> {
  const answers = new Map<string, NodeAnswer>()
  await Promise.all(
    status.members.map(async (member) => {
      const address = member.endpoint?.controlAddress
      if (!member.registered || address === undefined || address === '') return
      answers.set(member.nodeId, await askNode(address, timeoutMs, token))
    }),
  )
  return answers
}

async function askNode(address: string, timeoutMs: number, token: string | undefined): Promise<NodeAnswer> {
  try {
    const response = await fetch(`http://${address}/_/cluster`, {
      headers: token === undefined ? {} : { authorization: `Bearer ${token}` },
      signal: AbortSignal.timeout(timeoutMs),
    })
    const length = Number(response.headers.get('content-length') ?? 0)
    if (length > nodeAnswerBytesMax) {
      await response.body?.cancel()
      return { ok: false, error: `answer of ${length} bytes is too large` }
    }
    const text = await response.text()
    if (text.length > nodeAnswerBytesMax) return { ok: false, error: 'answer too large' }
    if (response.status !== 200) return { ok: false, error: `HTTP ${response.status}: ${text.slice(0, 200)}` }
    return { ok: true, view: JSON.parse(text) as NodeClusterStatus & { replication?: ClusterRuntimeView } }
  } catch (error) {
    const failure = error as Error
    return { ok: false, error: failure.name === 'TimeoutError' ? `no answer within ${timeoutMs} ms` : failure.message }
  }
}

function membershipJson(action: 'add' | 'remove', nodeId: string, outcome: MembershipOutcome): unknown {
  if (!outcome.ok) return { action, node: nodeId, ok: false, reason: outcome.reason, message: outcome.message }
  const { assignment } = outcome
  return {
    action,
    node: nodeId,
    ok: true,
    previousEpoch: outcome.previousEpoch,
    assignment: { epoch: assignment.epoch, primary: assignment.primaryId, replicas: assignment.replicaIds, learners: assignment.learnerIds, durability: assignment.durability, committedLsn: assignment.committedLsn },
  }
}

function statusJson(status: ClusterStatus, nodes: ReadonlyMap<string, NodeAnswer>): unknown {
  const { assignment } = status
  return {
    assignment:
      assignment === undefined
        ? null
        : {
            epoch: assignment.epoch,
            primary: assignment.primaryId,
            replicas: assignment.replicaIds,
            learners: assignment.learnerIds,
            durability: assignment.durability,
            committedLsn: assignment.committedLsn,
            lineageResets: assignment.lineageResets,
          },
    committed: status.committed ?? null,
    coordinator: status.coordinator ?? null,
    members: status.members.map((member) => ({
      node: member.nodeId,
      role: member.role,
      registered: member.registered,
      endpoint: member.endpoint ?? null,
      report: member.report ?? null,
      suspects: member.suspects === undefined ? null : { epoch: member.suspects.epoch, primary: member.suspects.primaryId },
      live: ((answer) => (answer === undefined ? null : answer.ok ? answer.view : { error: answer.error }))(nodes.get(member.nodeId)),
    })),
  }
}

function formatStatus(url: string, status: ClusterStatus, nodes: ReadonlyMap<string, NodeAnswer>): string {
  const lines = [`cluster ${url}`]
  const { assignment } = status
  if (assignment === undefined) lines.push('no assignment yet (the coordinator makes one once enough nodes registered)')
  else {
    const committed = status.committed?.epoch === assignment.epoch ? status.committed.committedLsn : assignment.committedLsn
    const learners = assignment.learnerIds.length === 0 ? '' : `  learners ${assignment.learnerIds.join(',')}`
    lines.push(`epoch ${assignment.epoch}  primary ${assignment.primaryId}  replicas ${assignment.replicaIds.join(',') || '-'}${learners}  durability ${assignment.durability}  committed ${committed}`)
    for (const reset of assignment.lineageResets) lines.push(`lineage reset at epoch ${reset.epoch}: committed log kept up to LSN ${reset.keptLsn}`)
  }
  lines.push(`coordinator ${status.coordinator ?? '-'}`)
  const rows = [['NODE', 'ROLE', 'LIVE', 'DATA', 'CONTROL', 'EPOCH', 'DURABLE', 'SAFE', 'COMMITTED', 'APPLIED', 'REPLICA STATES', 'SUSPECTS']]
  for (const member of status.members) {
    const report = member.report
    rows.push([
      member.nodeId,
      member.role,
      member.registered ? 'yes' : 'no',
      member.endpoint?.dataAddress ?? '-',
      member.endpoint?.controlAddress ?? '-',
      report === undefined ? '-' : String(report.epoch),
      report === undefined ? '-' : String(report.durableLsn),
      report === undefined ? '-' : String(report.safeLsn),
      report === undefined ? '-' : String(report.committedLsn),
      report === undefined ? '-' : String(report.appliedLsn),
      report === undefined || report.replicaStates.length === 0 ? '-' : report.replicaStates.map((state) => `${state.replicaId}=${state.state}`).join(','),
      member.suspects === undefined ? '-' : `${member.suspects.primaryId}@${member.suspects.epoch}`,
    ])
  }
  table(lines, rows)
  lines.push('', 'nodes (their /_/cluster now)')
  const live = [['NODE', 'ROLE', 'EPOCH', 'HEAD', 'FLUSHED', 'COMMITTED', 'APPLIED', 'CAUGHT UP', 'FAILOVERS SEEN']]
  let primary: ClusterRuntimeView | undefined
  let primaryId = ''
  for (const member of status.members) {
    const answer = nodes.get(member.nodeId)
    if (answer === undefined) continue
    if (!answer.ok) {
      live.push([member.nodeId, `unreachable: ${answer.error}`])
      continue
    }
    const { view } = answer
    live.push([member.nodeId, view.role, String(view.epoch), String(view.headLsn), String(view.flushedLsn), String(view.committedLsn), String(view.appliedIndex), view.caughtUp ? 'yes' : 'no', String(view.replication?.primaryChanges ?? '-')])
    if (view.role === 'primary' && view.replication !== undefined && (primary === undefined || (view.replication.assignment?.epoch ?? 0) > (primary.assignment?.epoch ?? 0))) {
      primary = view.replication
      primaryId = member.nodeId
    }
  }
  table(lines, live)
  if (primary !== undefined) {
    lines.push('', `replicas as primary ${primaryId} sees them (lease ${primary.lease ?? '-'}, commit recorded in etcd ${primary.recordedCommitLsn ?? '-'})`)
    const replicas = [['REPLICA', 'VOTES', 'STATE', 'LINK', 'ADDRESS', 'HEAD', 'FLUSHED', 'COMMITTED', 'APPLIED', 'LAG', 'CONNECTIONS', 'LAST ERROR']]
    const lsn = (value: number | undefined): string => (value === undefined ? '-' : String(value))
    for (const replica of primary.replicas) {
      replicas.push([replica.replicaId, replica.membership === 'learner' ? 'learner' : 'voter', replica.state, replica.link, replica.address ?? '-', lsn(replica.headLsn), lsn(replica.flushedLsn), lsn(replica.committedLsn), lsn(replica.appliedLsn), String(replica.lagEntries), String(replica.connections), replica.lastError ?? '-'])
    }
    table(lines, replicas)
    const recent = primary.recoveryLog.slice(-recoveryLinesShown)
    lines.push('', `recovery log of ${primaryId} (last ${recent.length} of ${primary.recoveryLog.length}; --json has all)`)
    for (const line of recent) lines.push(`${line.at} ${line.level.padEnd(5)} ${line.message}`)
  }
  return `${lines.join('\n')}\n`
}

/** Appends rows as aligned columns. */
function table(lines: string[], rows: readonly (readonly string[])[]): void {
  const widths = rows[0]?.map((_, column) => Math.max(...rows.map((row) => (row[column] ?? '').length))) ?? []
  for (const row of rows) lines.push(row.map((cell, column) => cell.padEnd(widths[column] ?? 0)).join('  ').trimEnd())
}
