/**
 * `commitVolumes` as it was before the commit volumes became a list
 * (`ListedVolumes`), frozen as the oracle of the differential tests
 * (`test/domain/commit-volumes.property.test.ts`): pre and post commit
 * volumes as maps without prototype, accounts inserted in sorted order
 * (UTF-16 code units), each account's assets likewise, each volume
 * `{input, output, balance}`.
 */
import type { MovedVolumes, Volumes, VolumesMap } from '../../src/domain/index.ts'
import { emptyKeyed, invariant } from '../../src/domain/index.ts'

export function commitVolumesAsMaps(moved: readonly MovedVolumes[]): { pre: VolumesMap; post: VolumesMap } {
  const sorted = [...moved].sort((a, b) => (pairBefore(a, b) ? -1 : pairBefore(b, a) ? 1 : 0))
  const pre: VolumesMap = emptyKeyed()
  const post: VolumesMap = emptyKeyed()
  let account: string | undefined
  let preAssets = undefined as unknown as VolumesMap[string]
  let postAssets = undefined as unknown as VolumesMap[string]
  let asset: string | undefined
  for (const entry of sorted) {
    if (entry.account !== account) {
      account = entry.account
      asset = undefined
      preAssets = emptyKeyed()
      postAssets = emptyKeyed()
      pre[account] = preAssets
      post[account] = postAssets
    }
    invariant(entry.asset !== asset, 'a moved (account, asset) pair appears twice')
    asset = entry.asset
    preAssets[asset] = volumesWithBalance(entry.pre)
    postAssets[asset] = volumesWithBalance(entry.post)
  }
  return { pre, post }
}

function pairBefore(a: MovedVolumes, b: MovedVolumes): boolean {
  return a.account < b.account || (a.account === b.account && a.asset < b.asset)
}

/** Volumes in v2's wire shape, `{input, output, balance}`, as the maps above hold them. */
export function volumesWithBalance(volumes: Volumes): { input: bigint; output: bigint; balance: bigint } {
  return { input: volumes.input, output: volumes.output, balance: volumes.input - volumes.output }
}
