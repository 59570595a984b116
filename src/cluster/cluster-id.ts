/**
 * The cluster id every member shares (the audit chain and the cursors are
 * keyed by it): kept in etcd under `<prefix>cluster-id`, created once by
 * compare-and-swap (the first node to start writes it, every other node
 * reads the winner's), never changed.
 */
import { randomUUID } from 'node:crypto'
import type { EtcdControlPlane } from './etcd/index.ts'

export const clusterIdBytesMax = 128

export function clusterIdKey(control: EtcdControlPlane): string {
  return `${control.keys.prefix}cluster-id`
}

/** The cluster's id from etcd; `proposed` (or a new UUID) is written when none exists yet. */
export async function sharedClusterId(control: EtcdControlPlane, proposed: string = randomUUID()): Promise<string> {
  const key = clusterIdKey(control)
  const client = control.client
  const response = await control.call('cluster id', () => client.if(key, 'Create', '==', 0).then(client.put(key).value(proposed)).else(client.get(key)).commit())
  if (response.succeeded) return proposed
  const kv = response.responses[0]?.response_range?.kvs[0]
  const value = kv?.value.toString('utf8')
  if (value === undefined || value.length === 0 || value.length > clusterIdBytesMax || !/^[\x21-\x7e]+$/.test(value)) {
    throw new Error(`malformed cluster id at ${key} in etcd`)
  }
  return value
}
