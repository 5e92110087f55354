/** One jest run for the whole workspace; packages resolve to their TypeScript sources. */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/packages', '<rootDir>/adapters', '<rootDir>/test'],
  testMatch: ['**/__tests__/**/*.test.ts', '<rootDir>/test/**/*.test.ts'],
  testPathIgnorePatterns: ['/node_modules/', '/dist/'],
  transform: { '^.+\\.ts$': ['ts-jest', { tsconfig: '<rootDir>/tsconfig.json', diagnostics: false }] },
  moduleNameMapper: {
    '^@crm-sync/adapter-(.*)$': '<rootDir>/adapters/$1/src',
    '^@crm-sync/e2e$': '<rootDir>/test',
    '^@crm-sync/(.*)$': '<rootDir>/packages/$1/src',
  },
  maxWorkers: 2,
  testTimeout: 30000,
};
