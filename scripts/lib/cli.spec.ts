import { integerOption, nonNegativeOption, parseCommandLine, UsageError } from './cli';

const options = { nodes: { type: 'string', short: 'n' }, clean: { type: 'boolean' } } as const;

function usageMessage(run: () => unknown): string {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(UsageError);
    return (error as Error).message;
  }
  throw new Error('no UsageError');
}

describe('parseCommandLine', () => {
  it('parses flags, short flags and positionals as parseArgs does', () => {
    const { values, positionals } = parseCommandLine({ args: ['-n', '5', '--clean', 'stop', 'node1'], options, allowPositionals: true });
    expect(values).toEqual({ nodes: '5', clean: true });
    expect(positionals).toEqual(['stop', 'node1']);
  });

  it('rejects an unknown flag, a flag without its value and an unexpected argument, in one readable line', () => {
    expect(usageMessage(() => parseCommandLine({ args: ['--bogus'], options, allowPositionals: true }))).toBe("unknown option '--bogus'");
    expect(usageMessage(() => parseCommandLine({ args: ['-x'], options }))).toBe("unknown option '-x'");
    expect(usageMessage(() => parseCommandLine({ args: ['--nodes'], options }))).toBe("option '--nodes' needs a value");
    expect(usageMessage(() => parseCommandLine({ args: ['stray'], options }))).toBe("unexpected argument 'stray'");
  });
});

describe('integerOption and nonNegativeOption', () => {
  it('accept what is in range and name the flag otherwise', () => {
    expect(integerOption('--nodes', '3', 1, 9)).toBe(3);
    expect(usageMessage(() => integerOption('--nodes', '10', 1, 9))).toBe('--nodes must be an integer from 1 to 9 (got 10)');
    expect(usageMessage(() => integerOption('--rounds', '1.5', 1))).toBe('--rounds must be an integer of at least 1 (got 1.5)');
    expect(usageMessage(() => integerOption('--rounds', '', 1))).toMatch(/^--rounds must be/);
    expect(nonNegativeOption('--budget-ms', '0')).toBe(0);
    expect(usageMessage(() => nonNegativeOption('--budget-ms', 'soon'))).toBe('--budget-ms needs a non-negative number (got soon)');
  });
});
