# Writes a C++ source holding a file's bytes: cmake -DIN=file -DOUT=file.cpp -P embed.cmake
file(READ "${IN}" hex HEX)
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
get_filename_component(name "${IN}" NAME)
file(WRITE "${OUT}"
  "// Generated from ${name} at build time.\n"
  "#include \"chat_page.h\"\n\n"
  "namespace smoe::server {\nnamespace {\nconst unsigned char kPage[] = {${bytes} 0};\n}\n"
  "std::string_view chat_page_html() {\n"
  "  return {reinterpret_cast<const char*>(kPage), sizeof(kPage) - 1};\n}\n"
  "}  // namespace smoe::server\n")
