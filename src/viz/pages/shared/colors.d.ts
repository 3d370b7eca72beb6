// Types of colors.js (plain ES module served to the browser), for the TypeScript tests.
export declare const DIVERGING_STOPS: string[];
export declare const PLOTLY_DIVERGING: [number, string][];
export declare const PLOTLY_SEQUENTIAL: [number, string][];
export declare const METHOD_COLORS: Record<string, string>;
export declare const NODE_COLORS: Record<'embedding' | 'attention' | 'mlp' | 'logits', string>;
export declare function hexToRgb(hex: string): [number, number, number];
export declare function divergingRgb(v: number): [number, number, number];
export declare function edgeColor(sign: number, t: number, alpha?: number): string;
export declare function methodColor(method: string, k: number): string;
