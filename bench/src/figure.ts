/** One measured number in the report. Ratios are measured in one run, so they survive a slower or busier machine. */
export interface Figure {
  name: string;
  /** NaN for a described figure: its `note` is the value shown. */
  value: number;
  unit: string;
  /** The goal, e.g. `≤ 1.3×`; `met` says whether this run reached it. */
  target?: string;
  met?: boolean;
  note?: string;
}

/** A benchmark module: bench/src/benchmarks/<name>.ts, listed in run.ts. */
export interface Benchmark {
  name: string;
  /** What it measures, one sentence for the report. */
  description: string;
  run(): Promise<Figure[]>;
}
