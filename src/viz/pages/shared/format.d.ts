// Types of format.js (plain ES module served to the browser), for the TypeScript tests.
export declare function fmt(x: number | null | undefined, digits?: number): string;
export declare function formatBytes(n: number): string;
export declare function formatDate(iso: string | null | undefined): string;
export declare function showToken(tok: string | undefined): string;
export declare function plotlyText(s: string): string;
export declare const METHOD_ORDER: string[];
export declare const COMPONENT_ORDER: string[];
export declare function orderBy(names: Iterable<string>, order: string[]): string[];
