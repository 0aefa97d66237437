import { Inflights } from './inflights';

describe('Inflights', () => {
  it('fills up, frees up to an index, and wraps around the ring', () => {
    const f = new Inflights(4);
    [1, 2, 3, 4].forEach((i) => f.add(i));
    expect(f.full()).toBe(true);
    expect(() => f.add(5)).toThrow('full');
    f.freeLE(2);
    expect(f.count).toBe(2);
    f.add(5);
    f.add(6);
    expect(f.full()).toBe(true);
    f.freeLE(5);
    expect(f.count).toBe(1);
    f.freeFirstOne();
    expect(f.count).toBe(0);
    f.freeLE(100);
    expect(f.count).toBe(0);
  });

  it.each([
    [0, 3],
    [1, 3],
    [10, 2],
    [20, 1],
    [30, 0],
    [99, 0],
  ])('freeLE(%d) leaves %d', (to, left) => {
    const f = new Inflights(3);
    [10, 20, 30].forEach((i) => f.add(i));
    f.freeLE(to);
    expect(f.count).toBe(left);
  });

  it('reset empties the window', () => {
    const f = new Inflights(2);
    f.add(1);
    f.reset();
    expect(f.count).toBe(0);
    f.add(2);
    f.add(3);
    expect(f.full()).toBe(true);
  });
});
