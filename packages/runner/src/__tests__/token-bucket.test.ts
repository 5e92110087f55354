import { TokenBucket } from '../dispatch/token-bucket';

describe('TokenBucket', () => {
  it('allows a burst of one second\'s worth, then refills at the rate', () => {
    const b = new TokenBucket(4, 0);
    expect(b.available(0)).toBe(4);
    b.take(4, 0);
    expect(b.available(0)).toBe(0);
    expect(b.readyAt(0)).toBe(250);
    expect(b.available(250)).toBe(1);
    expect(b.available(10_000)).toBe(4);
  });

  it('a burst of one: tokens evenly spaced at the rate, none saved up while idle', () => {
    const b = new TokenBucket(40, 0, 1);
    expect(b.available(0)).toBe(1);
    b.take(1, 0);
    expect(b.readyAt(0)).toBe(25);
    expect(b.available(24)).toBe(0);
    expect(b.available(10_000)).toBe(1);
  });

  it('taking more than there is goes into debt', () => {
    const b = new TokenBucket(2, 0);
    b.take(1, 0);
    b.take(3, 0);
    expect(b.available(0)).toBe(0);
    expect(b.readyAt(0)).toBe(1500); // from -2 back to 1 token at 2/s
  });

  it('a pause stops everything until it ends, limited or not', () => {
    const b = new TokenBucket(undefined, 0);
    expect(b.available(0)).toBe(Infinity);
    b.pause(5000);
    b.pause(1000); // a shorter pause never shortens a longer one
    expect(b.available(4999)).toBe(0);
    expect(b.readyAt(0)).toBe(5000);
    expect(b.available(5000)).toBe(Infinity);
  });
});
