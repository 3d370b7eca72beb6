import { describe, expect, it } from 'vitest';
import { legendText, MIB_NOTE } from '../../../../src/viz/pages/circuit/faithfulness.js';

describe('faithfulness panel legend', () => {
  const curve = { method: 'eap', ablation: 'corrupt', curve: [], auc: 0.61234 };

  it('shows MIB’s CPR and CMD next to the AUC when the curve has them', () => {
    expect(legendText(curve)).toBe('eap (corrupt): AUC 0.612');
    expect(legendText({ ...curve, mib: { fractions: [], edges: [], recovered: [], cpr: 0.84567, cmd: 0.2 } })).toBe('eap (corrupt): AUC 0.612 · CPR 0.846 · CMD 0.2');
    expect(MIB_NOTE).toMatch(/higher CPR and lower CMD are better/);
  });
});
