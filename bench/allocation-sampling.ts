/**
 * Allocation sampling for in-process benches: V8's sampling heap profiler
 * through the inspector, counting objects the GC already collected too (what
 * a bench wants is every allocation, not what is live at the end). Prints
 * bytes allocated per unit and the heaviest allocating functions (self).
 */
import { writeFile } from 'node:fs/promises'
import { Session } from 'node:inspector/promises'

interface SamplingNode {
  readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number }
  readonly selfSize: number
  readonly children: readonly SamplingNode[]
}

interface SamplingProfile {
  readonly head: SamplingNode
}

export interface AllocationSampling {
  /** Stops sampling, writes the profile to `file`, prints bytes per `unit` over `units`. */
  stop(file: string, units: number, unit: string): Promise<void>
}

/** Samples one allocation per `intervalBytes` on average (V8's default is 32 KiB). */
export async function startAllocationSampling(intervalBytes = 4096): Promise<AllocationSampling> {
  const session = new Session()
  session.connect()
  await session.post('HeapProfiler.startSampling', {
    samplingInterval: intervalBytes,
    includeObjectsCollectedByMajorGC: true,
    includeObjectsCollectedByMinorGC: true,
  })
  return {
    async stop(file, units, unit) {
      const { profile } = (await session.post('HeapProfiler.stopSampling')) as { profile: SamplingProfile }
      session.disconnect()
      await writeFile(file, JSON.stringify(profile))
      const bySite = new Map<string, number>()
      let total = 0
      const name = (node: SamplingNode): string => {
        const url = node.callFrame.url.replace(/^file:\/\/.*?\/(src|bench|node_modules)\//, '$1/')
        return `${node.callFrame.functionName || '(anonymous)'}${url === '' ? '' : ` ${url}`}`
      }
      // A builtin (no script: Object.keys, Map.set, …) is named with the function that called it.
      const walk = (node: SamplingNode, caller: string): void => {
        total += node.selfSize
        const own = name(node)
        const site = node.callFrame.url === '' ? `${own} ← ${caller}` : own
        if (node.selfSize > 0) bySite.set(site, (bySite.get(site) ?? 0) + node.selfSize)
        for (const child of node.children) walk(child, node.callFrame.url === '' ? caller : own)
      }
      walk(profile.head, '(root)')
      console.log(`allocated (sampled): ${(total / units).toFixed(0)} B/${unit}; heaviest sites, B/${unit}:`)
      for (const [site, bytes] of [...bySite].sort((a, b) => b[1] - a[1]).slice(0, 40)) {
        console.log(`${(bytes / units).toFixed(0).padStart(8)}  ${site}`)
      }
    },
  }
}
