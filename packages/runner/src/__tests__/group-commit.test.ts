import { GroupCommit } from '../store/group-commit';

describe('GroupCommit', () => {
  it('writes calls made in the same turn as one batch and answers each caller with its own outputs', async () => {
    const batches: number[][] = [];
    const gc = new GroupCommit<number, number>((items) => { batches.push(items); return items.map((i) => i * 10); });
    const results = await Promise.all([gc.submit([1, 2]), gc.submit([3]), gc.submit([4, 5, 6])]);
    expect(batches).toEqual([[1, 2, 3, 4, 5, 6]]);
    expect(results).toEqual([[10, 20], [30], [40, 50, 60]]);
    await gc.submit([7]);
    expect(batches).toHaveLength(2);
  });

  it('commits at once when a batch is full', async () => {
    const batches: number[][] = [];
    const gc = new GroupCommit<number, number>((items) => { batches.push(items); return items; }, 3);
    const a = gc.submit([1, 2]);
    const b = gc.submit([3]);
    expect(batches).toEqual([[1, 2, 3]]); // before any tick
    const c = gc.submit([4]);
    await Promise.all([a, b, c]);
    expect(batches).toEqual([[1, 2, 3], [4]]);
  });

  it('a failed commit rejects every caller of that batch', async () => {
    const gc = new GroupCommit<number, number>(() => { throw new Error('disk full'); });
    const results = await Promise.allSettled([gc.submit([1]), gc.submit([2])]);
    expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected']);
    expect(await gc.submit([]).then((r) => r)).toEqual([]);
  });
});
