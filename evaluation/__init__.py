"""RexBERT evaluation: top-k masked-token recovery (`mlm`), CoSENT on ESCI (`cosent`) and GLUE (`glue`), each
loading its model through `loading` and writing the `rexbert-eval/1` results files of `results`, which
`model_cards` reads."""
