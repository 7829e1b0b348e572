// The chat page served at / (server/chat_page.html, built into the binary).
#pragma once

#include <string_view>

namespace smoe::server {
std::string_view chat_page_html();
}
