// Types of state.js (plain ES module served to the browser), for the TypeScript tests.
export interface ViewState {
  method: string | null;
  threshold: number | null;
  pins: string[];
}

export declare function parseState(search: string): ViewState;
export declare function serializeState(state: { method: string; threshold: number; pins: string[] }): string;
export declare function sliderToThreshold(pos: number, lo: number, hi: number, steps: number): number;
export declare function thresholdToSlider(threshold: number, lo: number, hi: number, steps: number): number;
