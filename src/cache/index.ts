export {
  AttributeCache,
  MalformedMirrorRow,
  MIRROR_ZONE,
  cacheRotationThresholdDefault,
  cacheGenerationBytesMaxDefault,
  cacheEntryOverheadBytes,
  initialCacheState,
  sameCacheSettings,
  validateCacheSettings,
} from './cache.ts'
export type { MirrorSink, CacheCheck, CacheLookup, CacheSettings, CacheState } from './cache.ts'
