/**
 * The circuit API speaks the one vocabulary (issue 22): `runCircuit` takes rules as a preset name
 * or a RuleSet of one's own (the one `Rules` type), and `graphFromModel(model)` is the graph
 * `buildGraph(L, H, model.topology())` builds.
 */
import { describe, expect, it } from 'vitest';
import { buildGraph, graphFromModel } from '../../src/circuits/graph.ts';
import { runCircuit } from '../../src/circuits/run-circuit.ts';
import { RULE_PRESETS, type RuleSet } from '../../src/rules/rules.ts';
import { HookedTransformer } from '../../src/hooks/hooked-transformer.ts';
import { configFromHF } from '../../src/models/config.ts';
import { randomStateDict } from '../../src/models/state-dict.ts';
import { tinyData, tinyModel } from './helpers.ts';

describe('one vocabulary in the circuit API', () => {
  const { model } = tinyModel();
  const data = tinyData();
  const run = (rules: 'relp' | RuleSet) => runCircuit(model, data, { methods: ['eap-relp'], rules, curvePoints: 3 });

  it('runCircuit takes a RuleSet object and scores as with the equal preset name', () => {
    const custom: RuleSet = { ln: true, identity: true, half: true }; // RULE_PRESETS.relp, written out
    const byName = run('relp');
    const bySet = run(custom);
    expect(Array.from(bySet.scores['eap-relp']!.scores)).toEqual(Array.from(byName.scores['eap-relp']!.scores));
    expect(Array.from(bySet.mask)).toEqual(Array.from(byName.mask));
    expect(bySet.circuitRecovered).toBe(byName.circuitRecovered);
    // The set is really used: another one scores differently.
    const other = run({ ln: true });
    const diff = Math.max(...Array.from(other.scores['eap-relp']!.scores, (v, e) => Math.abs(v - byName.scores['eap-relp']!.scores[e])));
    expect(diff).toBeGreaterThan(1e-4);
    expect(RULE_PRESETS.relp).toEqual(custom);
  });

  it('graphFromModel(model) is buildGraph(L, H, model.topology()), with the GQA convention as an option', () => {
    expect(graphFromModel(model)).toEqual(buildGraph(model.cfg.nLayers, model.cfg.nHeads, model.topology()));
    const gqaCfg = configFromHF({ model_type: 'llama', num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2, hidden_size: 16, intermediate_size: 24, vocab_size: 23, max_position_embeddings: 8 });
    const gqa = HookedTransformer.fromStateDict(gqaCfg, randomStateDict(gqaCfg, { seed: 3 }));
    for (const convention of ['grouped', 'per-head'] as const) {
      const want = buildGraph(2, 4, { ...gqa.topology(), gqa: convention });
      expect(graphFromModel(gqa, { gqa: convention })).toEqual(want);
    }
    expect(graphFromModel(gqa, { gqa: 'per-head' }).nEdges).toBeGreaterThan(graphFromModel(gqa).nEdges);
    gqa.dispose();
  });
});
