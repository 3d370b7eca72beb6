/**
 * One list of method names and one rules type (issue 22). The method names are listed once, in
 * src/methods.ts's registry; every other list is derived from it. Read with the TypeScript parser
 * over every source file of src/ (the viewer's page scripts too), so comments do not count and
 * code does:
 * - an array literal, or a union of literal types, that names ≥ 2 methods;
 * - a string, template or regex literal that lists ≥ 2 methods (`a, b` or `a|b`), as help text,
 *   error messages and shard-key patterns used to;
 * - a union type with `RuleSet` in it other than `Rules` itself, or an option `rules` typed `string`
 *   outside the CLI (the CLI parses strings into presets).
 */
import { readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import { sourceFiles } from '../helpers/long-functions.ts';
import { EDGE_METHODS, METHODS, NODE_METHODS } from '../../src/methods.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const REGISTRY = 'src/methods.ts';
const RULES_MODULE = 'src/rules/rules.ts';
const NAMES = new Set<string>(METHODS.map((m) => m.name));

/** A list of ≥ 2 method names inside one piece of literal text: `a, b`, `a,b` or `a|b`. */
function listsMethods(text: string): boolean {
  const esc = (n: string) => n.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const name = `(?:${[...NAMES].sort((a, b) => b.length - a.length).map(esc).join('|')})`;
  // Regex source escapes `*` as `\*`, so allow a backslash before it; a name may not run on into letters or `-`.
  const item = `(?<![\\w-])${name.replace('atp\\*', 'atp\\\\?\\*')}(?![\\w-])`;
  return new RegExp(`${item}\\??\\s*(?:,|\\|)\\s*${item}`).test(text);
}

interface Finding {
  file: string;
  line: number;
  what: string;
}

/** Every place in `source` (named `file`) that lists method names or types rules a second way. */
export function findings(file: string, source: string): Finding[] {
  const sf = ts.createSourceFile(file, source, ts.ScriptTarget.Latest, true, file.endsWith('.js') ? ts.ScriptKind.JS : ts.ScriptKind.TS);
  const out: Finding[] = [];
  const at = (node: ts.Node, what: string) => out.push({ file, line: sf.getLineAndCharacterOfPosition(node.getStart(sf)).line + 1, what });
  const isName = (n: ts.Node) => (ts.isStringLiteral(n) || ts.isNoSubstitutionTemplateLiteral(n)) && NAMES.has(n.text);
  const visit = (node: ts.Node): void => {
    if (ts.isArrayLiteralExpression(node) && node.elements.filter(isName).length >= 2) at(node, `array of method names: ${node.getText(sf).slice(0, 80)}`);
    if (ts.isUnionTypeNode(node)) {
      const literals = node.types.filter((t) => ts.isLiteralTypeNode(t) && isName(t.literal));
      if (literals.length >= 2) at(node, `union of method names: ${node.getText(sf).slice(0, 80)}`);
      // `RuleSet | undefined` is an optional RuleSet; `RuleSet` next to anything else is a second rules type.
      const isRuleSet = (t: ts.TypeNode) => ts.isTypeReferenceNode(t) && t.typeName.getText(sf) === 'RuleSet';
      const optional = (t: ts.TypeNode) => t.kind === ts.SyntaxKind.UndefinedKeyword || (ts.isLiteralTypeNode(t) && t.literal.kind === ts.SyntaxKind.NullKeyword);
      const rulesUnion = node.types.some(isRuleSet) && node.types.some((t) => !isRuleSet(t) && !optional(t));
      const isRulesAlias = ts.isTypeAliasDeclaration(node.parent) && node.parent.name.text === 'Rules' && file === RULES_MODULE;
      if (rulesUnion && !isRulesAlias) at(node, `a rules type besides Rules: ${node.getText(sf)}`);
    }
    if (ts.isStringLiteral(node) || ts.isNoSubstitutionTemplateLiteral(node) || ts.isTemplateHead(node) || ts.isTemplateMiddle(node) || ts.isTemplateTail(node) || ts.isRegularExpressionLiteral(node)) {
      if (listsMethods(node.text)) at(node, `method names listed in text: ${node.getText(sf).slice(0, 80)}`);
    }
    if ((ts.isPropertySignature(node) || ts.isParameter(node)) && node.name.getText(sf) === 'rules' && node.type?.kind === ts.SyntaxKind.StringKeyword && !file.startsWith('src/cli/')) {
      at(node, `rules typed string: ${node.getText(sf)}`);
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return out;
}

describe('one definition', () => {
  const files = sourceFiles(join(ROOT, 'src')).map((f) => ({ file: relative(ROOT, f).split('\\').join('/'), source: readFileSync(f, 'utf8') }));
  const all = files.flatMap((f) => findings(f.file, f.source));

  it('method names are listed only in the registry (src/methods.ts, one entry object per method)', () => {
    const outside = all.filter((f) => !f.what.includes('rules'));
    expect(outside.map((f) => `${f.file}:${f.line} ${f.what}`)).toEqual([]);
    // ... where each name is defined once, in one array of entries.
    const registry = files.find((f) => f.file === REGISTRY)!.source;
    for (const name of NAMES) expect(registry.split(`name: '${name}'`).length - 1, name).toBe(1);
  });

  it('rules have one type: Rules = RulePresetName | RuleSet in src/rules/rules.ts', () => {
    const rules = all.filter((f) => f.what.includes('rules'));
    expect(rules.map((f) => `${f.file}:${f.line} ${f.what}`)).toEqual([]);
    const defs = files.filter((f) => /export type Rules = RulePresetName \| RuleSet;/.test(f.source)).map((f) => f.file);
    expect(defs).toEqual([RULES_MODULE]);
  });

  it('the registry keeps the names files and the CLI use, in display order', () => {
    expect(NODE_METHODS).toEqual(['activation', 'atp', 'atp*', 'relp']);
    expect(EDGE_METHODS).toEqual(['eap', 'eap-relp', 'eap-ig', 'exact']);
  });

  it('the check finds each kind of second list (so an empty report means something)', () => {
    const src = [
      "export const A = ['atp', 'relp'] as const;",
      "export type B = 'eap' | 'eap-ig';",
      "const help = 'comma list of activation, atp, atp*, relp';",
      'const key = /^grad\\/(atp\\*?|relp)\\/P(\\d+)$/;',
      'const key2 = /^edge\\/(eap|eap-relp|eap-ig)\\/P(\\d+)$/;',
      'const t = `use ${x}: eap, eap-relp`;',
      'export type R = string | RuleSet;',
      'interface O { rules?: string }',
      "let r: RuleSet | undefined; const fine = ['relp', 'x']; const prose = 'relp rules: relp (LN + Half)'; const one = m === 'atp*';",
    ].join('\n');
    const found = findings('src/x.ts', src).map((f) => `${f.line} ${f.what.split(':')[0]}`);
    expect(found).toEqual([
      '1 array of method names',
      '2 union of method names',
      '3 method names listed in text',
      '4 method names listed in text',
      '5 method names listed in text',
      '6 method names listed in text',
      '7 a rules type besides Rules',
      '8 rules typed string',
    ]);
  });
});
