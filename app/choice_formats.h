// Multiple-choice task files in the formats users already have, turned into token-level tasks
// (smoe/analysis.h ChoiceTask) by the scoring rule each format is known by:
//   hellaswag  llama.cpp's text format: per task six lines (context, the right ending's index
//              0-3, four endings). Each choice reads context + " " + ending; every token after
//              the tokens all four share is scored.
//   winogrande llama.cpp's CSV: index,sentence,option1,option2,answer (1 or 2), the sentence with
//              one '_' where an option goes. Each choice reads the sentence with its option; the
//              tokens after the option are scored (without the last one, the full stop) when
//              both choices have more than 3 tokens of their own, else every token of its own.
//   mc         llama.cpp's binary multiple-choice file (its ARC, MMLU and TruthfulQA sets): u32
//              task count, u32 offset of each task, then per task the question and two answer
//              lists (u32 count, strings as u32 length + bytes, i32 labels); the first list,
//              one answer labelled 1, is the task. Each choice reads question + " " + answer;
//              every token after the shared ones is scored.
//   jsonl      one JSON object per line: {"context": "...", "choices": ["...", ...], "answer": i};
//              each choice reads context + choice (write the space into the choice); every token
//              after the shared ones is scored.
#pragma once

#include <string>
#include <vector>

#include "smoe/analysis.h"
#include "smoe/tokenizer.h"

namespace smoe::app {

enum class ChoiceFormat { HellaSwag, WinoGrande, Binary, Jsonl };

// The format named ("hellaswag", "winogrande", "mc", "jsonl"), or for "auto" the one the file's
// name says (.csv: winogrande, .bin: mc, .jsonl/.json: jsonl, else hellaswag). Throws on an
// unknown name.
ChoiceFormat choice_format(const std::string& name, const std::string& path);
const char* choice_format_name(ChoiceFormat f);

// Reads and tokenizes every task of the file. Throws naming the file and line of a malformed task.
std::vector<ChoiceTask> read_choice_tasks(const std::string& path, ChoiceFormat f,
                                          const Tokenizer& tok);

}  // namespace smoe::app
