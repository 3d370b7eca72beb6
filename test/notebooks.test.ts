/**
 * Notebooks: the committed `.ipynb` files are exactly what their `.ts` sources generate, apart from
 * the outputs of their last run, which every code cell carries; the percent-format parser and the
 * plot pages behave. (Executing the notebooks is `npm run notebooks`, which writes those outputs
 * back, a separate CI step: too slow for the unit tests.)
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { DENO_KERNELSPEC, ipynbText, keepOutputs, notebookText, parsePercentSource, toIpynb, withoutOutputs } from '../notebooks/lib/percent-format.ts';
import { figureHtml, heatmapPanels, positionLabels } from '../notebooks/lib/plots.ts';
import { notebookNames, outOfSync } from '../scripts/run-notebooks.ts';

const NB = fileURLToPath(new URL('../notebooks/', import.meta.url));

describe('notebooks', () => {
  it('there are at least three, and each .ipynb matches its .ts source apart from outputs (else: npx tsx scripts/run-notebooks.ts --sync)', () => {
    const names = notebookNames();
    expect(names.length).toBeGreaterThanOrEqual(3);
    expect(outOfSync(names)).toEqual([]);
  });

  it('the committed notebooks carry their executed outputs (else: npm run notebooks)', () => {
    for (const name of notebookNames()) {
      const nb = JSON.parse(readFileSync(join(NB, `${name}.ipynb`), 'utf8')) as { cells: { cell_type: string; id: string; outputs?: { output_type: string }[] }[] };
      const code = nb.cells.filter((c) => c.cell_type === 'code');
      expect(code.filter((c) => !c.outputs?.length).map((c) => c.id), `${name}: code cells without outputs`).toEqual([]);
      expect(code.flatMap((c) => c.outputs!).filter((o) => o.output_type === 'error'), `${name}: error outputs`).toEqual([]);
    }
  });

  it('the generated notebooks are nbformat 4.5 for the Deno kernel, cells in source order', () => {
    for (const name of notebookNames()) {
      const nb = JSON.parse(readFileSync(join(NB, `${name}.ipynb`), 'utf8')) as { nbformat: number; nbformat_minor: number; metadata: { kernelspec: unknown }; cells: { cell_type: string; id: string; source: string[] }[] };
      expect([nb.nbformat, nb.nbformat_minor]).toEqual([4, 5]);
      expect(nb.metadata.kernelspec).toEqual(DENO_KERNELSPEC);
      expect(nb.cells[0].cell_type).toBe('markdown');
      expect(new Set(nb.cells.map((c) => c.id)).size).toBe(nb.cells.length);
      for (const c of nb.cells) expect(c.id).toMatch(/^[A-Za-z0-9_-]{1,64}$/);
      // The code cells, joined, are the source's code: nothing lost in conversion.
      const src = readFileSync(join(NB, `${name}.ts`), 'utf8');
      for (const c of nb.cells.filter((x) => x.cell_type === 'code')) expect(src).toContain(c.source.join(''));
    }
  });
});

describe('percent format', () => {
  it('splits markdown and code cells and strips the comment markers', () => {
    const src = '// %% [markdown]\n// # Title\n//\n// text\n\n// %%\nconst a = 1;\n\nconsole.log(a);\n\n// %%\n\n';
    expect(parsePercentSource(src)).toEqual([
      { kind: 'markdown', text: '# Title\n\ntext' },
      { kind: 'code', text: 'const a = 1;\n\nconsole.log(a);' },
    ]);
    const nb = toIpynb(parsePercentSource(src), 'x') as { cells: { source: string[] }[] };
    expect(nb.cells[1].source).toEqual(['const a = 1;\n', '\n', 'console.log(a);']);
  });

  it('names the line of a malformed source', () => {
    expect(() => parsePercentSource('const a = 1;\n', 'n.ts')).toThrow('n.ts:1: content before the first "// %%" cell marker');
    expect(() => parsePercentSource('// %% [markdown]\n// ok\nnot a comment\n', 'n.ts')).toThrow('n.ts:3: a markdown cell (started line 1)');
    expect(() => parsePercentSource('// %% [raw]\n', 'n.ts')).toThrow('n.ts:1: unknown cell marker');
  });

  it('an executed notebook is in sync when only its outputs differ, and --sync keeps the outputs of unchanged code cells', () => {
    const src = '// %%\nconsole.log(1);\n\n// %%\nconsole.log(2);\n';
    const generated = ipynbText(src, 'a');
    const nb = JSON.parse(generated) as { cells: { outputs: unknown[]; execution_count: number | null }[] };
    nb.cells.forEach((c, i) => Object.assign(c, { outputs: [{ name: 'stdout', output_type: 'stream', text: [`${i + 1}\n`] }], execution_count: i + 1 }));
    const executed = notebookText(nb);
    expect(withoutOutputs(executed)).toBe(generated);
    const resynced = JSON.parse(keepOutputs(ipynbText(src.replace('console.log(2)', 'console.log(3)'), 'a'), executed)) as typeof nb;
    expect(resynced.cells.map((c) => [c.outputs.length, c.execution_count])).toEqual([[1, 1], [0, null]]);
    expect(keepOutputs(generated, undefined)).toBe(generated);
  });

  it('is deterministic and ends with a newline', () => {
    const src = '// %%\nconsole.log(1);\n';
    expect(ipynbText(src, 'a')).toBe(ipynbText(src, 'a'));
    expect(ipynbText(src, 'a').endsWith('}\n')).toBe(true);
  });
});

describe('plot pages', () => {
  it('load plotly from the given local path and cannot be broken out of by data', () => {
    const fig = heatmapPanels([{ title: 'a</script><script>alert(1)</script>', z: [[1, -2]] }], { x: ['0:x', '1:y'], y: ['L0'], title: 't<b>' });
    const html = figureHtml(fig, 'x & <y>', '../../node_modules/plotly.js-dist/plotly.js');
    expect(html).toContain('<script src="../../node_modules/plotly.js-dist/plotly.js"></script>');
    expect(html).not.toMatch(/https?:\/\//); // no CDN
    expect(html.match(/<\/script>/g)).toHaveLength(2); // only the two real script ends
    expect(html).toContain('<title>x &amp; &lt;y&gt;</title>');
  });

  it('heatmap panels share one symmetric scale; position labels stay unique', () => {
    const fig = heatmapPanels([{ title: 'a', z: [[1, -3]] }, { title: 'b', z: [[2, 0.5]] }], { x: ['p0', 'p1'], y: ['L0'], title: 't' });
    for (const d of fig.data) expect([d.zmin, d.zmax]).toEqual([-3, 3]);
    expect(positionLabels([' John', ' and', ' John', ' '])).toEqual(['0:John', '1:and', '2:John', '3:" "']);
  });
});
