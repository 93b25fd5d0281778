#include "pim/runtime/output_file.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <string>

#include "gtest/gtest.h"

namespace pim::runtime {
namespace {

class OutputFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/pim-output-file-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::system(("rm -rf '" + dir_ + "'").c_str()); }
  std::string dir_;
};

TEST_F(OutputFileTest, AcceptsANewOrWritableFileInAnExistingDirectory) {
  EXPECT_TRUE(CheckOutputFile("--output", dir_ + "/new.npy").ok());
  std::ofstream(dir_ + "/old.npy") << "x";
  EXPECT_TRUE(CheckOutputFile("--output", dir_ + "/old.npy").ok());
}

TEST_F(OutputFileTest, EachProblemGetsOneErrorNamingOptionPathAndReason) {
  struct Case {
    std::string path, message;
  };
  ::mkdir((dir_ + "/sub").c_str(), 0755);
  std::ofstream(dir_ + "/plain") << "x";
  ::mkdir((dir_ + "/locked").c_str(), 0555);
  const Case cases[] = {
      {"", "--output: the path is empty"},
      {dir_ + "/sub", "--output " + dir_ + "/sub: is a directory"},
      {dir_ + "/missing/x.npy", "--output " + dir_ + "/missing/x.npy: directory '" + dir_ + "/missing' does not exist"},
      {dir_ + "/plain/x.npy", "--output " + dir_ + "/plain/x.npy: '" + dir_ + "/plain' is not a directory"},
  };
  for (const Case& c : cases) {
    absl::Status s = CheckOutputFile("--output", c.path);
    EXPECT_FALSE(s.ok()) << c.path;
    EXPECT_EQ(s.message(), c.message);
  }
  if (::geteuid() != 0) {  // root writes anywhere
    absl::Status s = CheckOutputFile("--output", dir_ + "/locked/x.npy");
    EXPECT_EQ(s.message(), "--output " + dir_ + "/locked/x.npy: directory '" + dir_ + "/locked' is not writable");
  }
}

}  // namespace
}  // namespace pim::runtime
