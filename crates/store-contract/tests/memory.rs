//! The store contract against the embedded (in-memory) implementations of `console`.

store_contract::contract_tests!(store_contract::Memory::default());
