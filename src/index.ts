/**
 * relp's public API (`import { loadModel, activationPatch } from 'relp'`): backend, hooked model,
 * model loading, tasks, activation/attribution/relevance patching and the LRP rules.
 * Circuits are in `relp/circuits`, the viewer in `relp/viz` (so importing the core does not load
 * express); these three entry points are the package's whole public surface.
 */
export { initBackend, currentBackend, type BackendName } from './backend.ts';
export { guardMemory, estimateBytes, maxBatchUnderLimit, WASM_HEAP_LIMIT_BYTES, type ExecutionChoice, type WorkloadShape } from './backend/memory-guard.ts';
export { HookedTransformer, type ForwardOptions, type CacheOptions, type CacheAndGrads, type MetricFn, type TokenInput, type BuildOptions, type StreamOptions } from './hooks/hooked-transformer.ts';
export type { StreamStats } from './hooks/streamed-weights.ts';
export type { BlockSource } from './models/block-source.ts';
export type { Hook, HookFn } from './hooks/hook-point.ts';
export { allHookNames, hookShape } from './hooks/hook-points.ts';
export { disposeCache, getActivation, type ActivationCache } from './hooks/activation-cache.ts';
export { configFromHF, configToHF, resolveConfig, MODEL_TYPES, type BaseConfig, type GPT2Config, type ModelConfig, type ModelType, type ConfigInput, type ActivationName, type NormType } from './models/config.ts';
export { canonicalShapes, type CanonicalWeights } from './models/canonical.ts';
export { hfToCanonical, canonicalToHF, hfTensorSpecs } from './models/architectures/index.ts';
export type { TensorSpec, TensorKind } from './models/architectures/common.ts';
export { graphTopology, type GraphTopology } from './models/topology.ts';
export { randomStateDict, validateStateDict, type StateDict, type RandomInitOptions } from './models/state-dict.ts';
export type { NamedArray } from './io/tensors.ts';
export { loadModel, loadModelWithTokenizer, EMBEDDED_MODEL_DIR, type LoadedModel, type LoadOptions } from './hooks/load-model.ts';
export { loadCheckpoint, type LoadedCheckpoint } from './models/checkpoint.ts';
export { downloadModel, defaultModelDir, HubDownloadError, type DownloadOptions, type DownloadResult, type DownloadedFile, type DownloadProgress } from './io/download.ts';
export { loadTokenizer, SingleTokenError, Tokenizer } from './tokenizer.ts';
export type { BosSource, ToTokensOptions, UnknownWord, TokenizerSpecials } from './tokenizer.ts';
export { generateIoi, groupByLength, type IoiCorruption, type IoiOptions } from './tasks/ioi.ts';
export { BABA_TEMPLATES } from './tasks/ioi-templates.ts';
export { ioiSameLength, loadDataset, IOI_DEFAULTS, type DatasetSpec, type DatasetRecord } from './tasks/dataset.ts';
export { loadJsonlDataset, parseJsonlDataset, writeJsonlDataset } from './tasks/jsonl.ts';
export type { PromptPair, PairBatch, TokenEncoder } from './tasks/types.ts';
export { toPatchingData, type PatchingData } from './patching/data.ts';
export { METRICS, logitDiff, normalisedLogitDiff, probDiff, negKlToClean, type Metric, type MetricContext } from './patching/metrics.ts';
export type { Baselines } from './patching/baselines.ts';
export type { Progress } from './patching/progress.ts';
export { COMPONENT_NAMES, EVERY_BLOCK, parseComponents, type ComponentName } from './patching/components.ts';
export { activationPatch, prepareActivationPatch, disposeActivationSetup, type ActivationPatchOptions, type ActivationSetup, type Direction, type PatchResult } from './patching/activation-patching.ts';
export { attributionPatch, ATP, ATP_STAR, relpMethod, type AttributionMethod, type AttributionOptions, type AttributionResult } from './patching/attribution-patching.ts';
export { runSweep, SWEEP_METHODS, SWEEP_DEFAULTS, CUSTOM_DATASET, type SweepOptions, type RunSweepOptions, type SweepResult } from './sweeps/run-sweep.ts';
export {
  correlate,
  correlationTable,
  correlationWarning,
  formatCorrelationTable,
  isGradientMethod,
  vanishingGradient,
  DEGENERATE_TOLERANCE,
  MAGNITUDE_METHODS,
  type CorrelateOptions,
  type CorrelationCell,
  type CorrelationTable,
  type CorrelationTableOptions,
  type DefinedCorrelation,
  type NoCorrelationNote,
  type RunMetricRecord,
  type ScoresByMethod,
  type UndefinedCorrelation,
  type UndefinedKind,
} from './patching/correlation.ts';
export { COMPONENT_ORDER, METHOD_ORDER, orderBy } from './patching/names.ts';
// The file contracts: one schema, reader and writer per file kind (run.json, circuit.json, faithfulness.json, MIB's circuit file).
export {
  ContractError,
  RUN_VERSION,
  CIRCUIT_VERSION,
  FAITHFULNESS_VERSION,
  readRunFile,
  writeRunFile,
  parseRunFile,
  runPairs,
  readCircuitFile,
  writeCircuitFile,
  parseCircuitFile,
  readFaithfulnessFile,
  writeFaithfulnessFile,
  parseFaithfulnessFile,
  readMibFile,
  writeMibFile,
  parseMibFile,
  makeProvenance,
  datasetHash,
  modelHash,
  type HashableModel,
  type PairText,
  prepareRunFolder,
  RunFolderConflictError,
  jsonSchemas,
  flattenTensor,
  type RunFile,
  type RunFileContent,
  type RunPair,
  type CircuitFile,
  type FaithfulnessFile,
  type FaithfulnessCurve,
  type MibFile,
  type Provenance,
  type RunFolderOptions,
  type RunFacts,
  type ScoreTensor,
} from './contracts/index.ts';
export type { MethodScores } from './patching/score-grid.ts';
export { RULE_PRESETS, resolveRules, parseRulePreset, rulesName, type RuleSet, type RulePresetName, type Rules } from './rules/rules.ts';
export {
  METHODS,
  NODE_METHODS,
  NODE_GRAD_METHODS,
  EDGE_METHODS,
  EDGE_GRAD_METHODS,
  DEFAULT_NODE_METHODS,
  NODE_GROUND_TRUTH,
  EDGE_GROUND_TRUTH,
  methodInfo,
  parseMethodName,
  takesRules,
  takesSteps,
  type MethodInfo,
  type RegisteredMethod,
  type MethodName,
  type NodeMethod,
  type NodeGradMethod,
  type EdgeMethod,
  type EdgeGradMethod,
} from './methods.ts';
export { inputRelevance, heatLine, type InputRelevance, type InputRelevanceOptions } from './relp/input-relevance.ts';
export { buildPlan, runPlan, runShardedSweep, planRunFile, type ShardRunOptions, type ShardSizes, type PlanRunStats } from './sweeps/sharded-sweep.ts';
export { planShards, parseShardKey, shardKey, planHash, GRAD_METHODS, type SweepPlan, type Shard, type ModelRef, type GradMethod } from './sweeps/plan.ts';
export type { ShardResult, ActPayload, GradPayload, EdgeGradPayload, EdgePayload, FaithPayload, NoopPayload } from './sweeps/run-shard.ts';
export { mergeShards, checkShardResult, type MergedRun } from './sweeps/merge.ts';
export { startQueueWorker, type QueueWorkerOptions, type QueueWorkerHandle } from './sweeps/queue-worker.ts';
