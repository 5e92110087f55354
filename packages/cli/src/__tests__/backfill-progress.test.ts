import { ProgressLine } from '../commands/backfill';

describe('backfill progress line', () => {
  it('says nothing of a rate over the first moments (a resumed run skips its done lines in a blink), then the rate and ETA', () => {
    const lines: string[] = [];
    let now = 1_000_000;
    const bar = new ProgressLine(1000, 400, false, { out: () => undefined, err: (t) => lines.push(t) }, () => now);
    now += 10;
    bar.update(450, 0); // 50 lines in 10 ms: 5,000 lines/s, if it were said
    now += 6_000;
    bar.update(600, 2); // 200 lines in 6.01 s
    expect(lines).toEqual([
      'backfill: 450/1000 lines (45%) · measuring the rate… · rejected 0',
      'backfill: 600/1000 lines (60%) · 33.3 lines/s · ETA 12s · rejected 2',
    ]);
  });

  it('the last line gives the rate however short the run', () => {
    const lines: string[] = [];
    let now = 0;
    const bar = new ProgressLine(10, 0, false, { out: () => undefined, err: (t) => lines.push(t) }, () => now);
    now = 500;
    bar.update(10, 0, true);
    expect(lines).toEqual(['backfill: 10/10 lines (100%) · 20.0 lines/s · ETA 0s · rejected 0']);
  });
});
