// @ts-check
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', 'coverage/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
    },
  },
  {
    // The planning core stays pure: no I/O adapters, no node built-ins that touch the world.
    files: ['src/reconcile/**/*.ts', 'src/model/**/*.ts', 'src/template/**/*.ts', 'src/config/**/*.ts'],
    ignores: ['**/*.test.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: [
                '**/adapters/**',
                '**/apply/**',
                '**/store/**',
                '**/cli/**',
                '**/host/**',
                '**/providers/**',
                '**/observe/**',
                '**/health/**',
                '**/source/**',
              ],
              message: 'the planning core is pure: no adapters, no pipeline, no plugins',
            },
            {
              group: ['node:fs*', 'node:child_process', 'node:net', 'node:http*', 'dockerode'],
              message: 'the planning core does no I/O',
            },
          ],
        },
      ],
    },
  },
);
