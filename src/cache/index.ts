export { AttributeCache, MalformedMirrorRow, MIRROR_ZONE, cacheRotationThresholdDefault, generationOf } from './cache.ts'
export type { MirrorSink, CacheCheck, CacheLookup } from './cache.ts'
